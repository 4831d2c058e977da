import Foundation
import ImageInput

/// Helpers that make test images and temporary trees.
public enum ImageFiles {
    /// The deterministic RGB pattern also produced by `Tests/ImageInputTests/Fixtures/make_fixtures.py`:
    /// `v(x, y, c) = (7x + 13y + 71c + (x*y mod 29)) & 255`, HWC.
    public static func syntheticRGB(width: Int, height: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    out[(y * width + x) * 3 + c] = UInt8((x * 7 + y * 13 + c * 71 + (x * y) % 29) & 255)
                }
            }
        }
        return out
    }

    public static func syntheticImage(width: Int, height: Int) -> DecodedImage {
        DecodedImage(width: width, height: height, rgb: syntheticRGB(width: width, height: height), format: "PNG", sourceMode: "RGB")
    }

    /// FNV-1a 64-bit hash as 16 lower-case hex digits.
    public static func fnv1a64Hex(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}
