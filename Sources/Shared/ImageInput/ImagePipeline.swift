/// The whole per-image path of a worker: decode → RGB → resize → preprocess.
public enum ImagePipeline {
    /// Writes `settings.height * settings.width * 3` float32 values (HWC) to `into`.
    public static func prepare(
        _ bytes: [UInt8], filename: String, settings: ImageSettings, into: UnsafeMutablePointer<Float>
    )
        throws(ImageDecodeError)
    {
        let decoded = try ImageDecoder.decode(bytes, filename: filename)
        if settings.interpolation == .nearest && (decoded.width != settings.width || decoded.height != settings.height)
        {
            // NEAREST only picks source pixels: preprocess them straight from the decoded image.
            Preprocess.applyNearest(
                decoded, width: settings.width, height: settings.height, mode: settings.preprocessing, into: into)
            return
        }
        let resized = Resize.apply(
            decoded, width: settings.width, height: settings.height, interpolation: settings.interpolation)
        Preprocess.apply(resized, mode: settings.preprocessing, into: into)
    }
}
