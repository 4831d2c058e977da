import CPNG
import CShims

/// Versions of the decoding libraries this process runs, for provenance records.
public enum ImageLibraries {
    /// libjpeg-turbo's version, e.g. "2.1.5" (from the headers it was built against), or "not libjpeg-turbo".
    public static var jpegTurboVersion: String {
        let number = Int(bn_jpeg_turbo_version_number())
        guard number > 0 else { return "not libjpeg-turbo" }
        return "\(number / 1_000_000).\(number / 1000 % 1000).\(number % 1000)"
    }

    /// The loaded libpng's version (`png_get_libpng_ver`), e.g. "1.6.39".
    public static var pngVersion: String {
        guard let version = png_get_libpng_ver(nil) else { return "unknown" }
        return String(cString: version)
    }
}
