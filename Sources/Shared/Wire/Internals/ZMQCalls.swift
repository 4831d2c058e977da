import CZeroMQ

/// Thin wrappers over libzmq calls; every C call of the module lives in this folder.

func zmqErrorText(_ code: Int32) -> String {
    guard let text = zmq_strerror(code) else { return "errno \(code)" }
    return String(cString: text)
}

func zmqFailure(_ what: String) -> WireError {
    let code = zmq_errno()
    return WireError(.zmq(code: code), "\(what): \(zmqErrorText(code))")
}

func setOption(_ socket: UnsafeMutableRawPointer, _ option: Int32, _ value: Int32, _ name: String) throws {
    var value = value
    if zmq_setsockopt(socket, option, &value, MemoryLayout<Int32>.size) != 0 {
        throw zmqFailure("setting \(name)=\(value)")
    }
}

func setOption64(_ socket: UnsafeMutableRawPointer, _ option: Int32, _ value: Int64, _ name: String) throws {
    var value = value
    if zmq_setsockopt(socket, option, &value, MemoryLayout<Int64>.size) != 0 {
        throw zmqFailure("setting \(name)=\(value)")
    }
}

func setOption(_ socket: UnsafeMutableRawPointer, _ option: Int32, bytes: [UInt8], _ name: String) throws {
    let status = bytes.withUnsafeBytes { zmq_setsockopt(socket, option, $0.baseAddress, $0.count) }
    if status != 0 { throw zmqFailure("setting \(name)") }
}

func stringOption(_ socket: UnsafeMutableRawPointer, _ option: Int32, _ name: String) throws -> String {
    var buffer = [CChar](repeating: 0, count: 1024)
    var size = buffer.count
    let status = buffer.withUnsafeMutableBytes { zmq_getsockopt(socket, option, $0.baseAddress, &size) }
    if status != 0 { throw zmqFailure("reading \(name)") }
    return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
