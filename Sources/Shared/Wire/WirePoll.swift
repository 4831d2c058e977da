import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

extension WireSocket {
    /// Waits up to `timeoutMilliseconds` (0: do not wait, -1: forever) until any of `sockets` can receive; returns
    /// the indices of those that can, in order (empty on a timeout or an interrupted wait).
    ///
    /// Every socket must belong to the calling thread (see `WireSocket`); one call watches them all, so a thread can
    /// serve many sockets (the load generator's simulated workers) without a poll per socket.
    public static func readable(_ sockets: [WireSocket], timeoutMilliseconds: Int) throws -> [Int] {
        var items = try sockets.map { socket -> zmq_pollitem_t in
            guard let raw = socket.raw else {
                throw WireError(.zmq(code: ENOTSOCK), "the \(socket.kind) socket is closed")
            }
            return zmq_pollitem_t(socket: raw, fd: -1, events: Int16(ZMQ_POLLIN), revents: 0)
        }
        let count = zmq_poll(&items, Int32(items.count), timeoutMilliseconds)
        if count < 0 {
            if zmq_errno() == EINTR { return [] }
            throw zmqFailure("polling \(sockets.count) sockets")
        }
        guard count > 0 else { return [] }
        return items.indices.filter { (items[$0].revents & Int16(ZMQ_POLLIN)) != 0 }
    }
}
