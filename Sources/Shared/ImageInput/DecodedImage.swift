import Reporting

/// A decoded image already converted to 8-bit RGB exactly as Pillow's `Image.convert('RGB')` does.
public struct DecodedImage: Sendable {
    public let width: Int
    public let height: Int
    /// Pixels in HWC order, RGB, 8 bits per sample, `width * height * 3` bytes, no row padding.
    public var rgb: [UInt8]
    /// Container format as Pillow names it: "JPEG", "PNG", "BMP", "PPM".
    public let format: String
    /// Pillow's mode of the file before conversion: "RGB", "L", "P", "RGBA", "LA", "CMYK", "I;16", "I", "1".
    public let sourceMode: String

    public init(width: Int, height: Int, rgb: [UInt8], format: String, sourceMode: String) {
        precondition(rgb.count == width * height * 3, "rgb must hold width*height*3 bytes")
        self.width = width
        self.height = height
        self.rgb = rgb
        self.format = format
        self.sourceMode = sourceMode
    }
}

/// A failure to read one image. Per-image failures are values to record, not reasons to stop a job.
public struct ImageDecodeError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The image's name as the caller knows it (Keras filename or path).
    public let filename: String
    public let reason: String

    public init(filename: String, reason: String) {
        self.filename = filename
        self.reason = reason
    }

    public var description: String { "\(filename): \(reason)" }
}

extension ImageDecodeError: ReportedError {
    public var subject: String? { filename }
    public var message: String { reason }
}
