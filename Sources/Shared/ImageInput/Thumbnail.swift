import CShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A failure to encode an image (out of memory, or libjpeg refusing the input).
public struct ImageEncodeError: Error, CustomStringConvertible, Sendable, Equatable {
    public let reason: String

    public init(reason: String) { self.reason = reason }

    public var description: String { "cannot encode JPEG: \(reason)" }
}

/// Small previews of decoded images, for reports: downscaled with Pillow's bilinear resize and encoded as
/// baseline JPEG through the same libjpeg shim the tests use to make inputs.
public enum Thumbnail {
    /// `image` scaled so that its longer side is at most `maxSide` pixels (aspect ratio kept, at least 1×1);
    /// returned unchanged when it already fits.
    public static func scaled(_ image: DecodedImage, maxSide: Int) -> DecodedImage {
        precondition(maxSide > 0, "maxSide must be positive")
        let longer = max(image.width, image.height)
        guard longer > maxSide else { return image }
        let width = max(1, (image.width * maxSide + longer / 2) / longer)
        let height = max(1, (image.height * maxSide + longer / 2) / longer)
        return Resize.apply(image, width: width, height: height, interpolation: .bilinear)
    }

    /// Baseline JPEG bytes of an RGB image at `quality` (1…100).
    public static func jpeg(_ image: DecodedImage, quality: Int = 85) throws(ImageEncodeError) -> [UInt8] {
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var message = [CChar](repeating: 0, count: 200)
        let code = message.withUnsafeMutableBufferPointer { text in
            image.rgb.withUnsafeBufferPointer { pixels in
                bn_jpeg_encode(
                    pixels.baseAddress, Int32(image.width), Int32(image.height), 3, Int32(min(100, max(1, quality))),
                    0, 0, &out, &size, text.baseAddress, text.count)
            }
        }
        guard code == 0, let out else {
            throw ImageEncodeError(reason: message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }
}
