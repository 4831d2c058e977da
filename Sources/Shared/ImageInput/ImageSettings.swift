/// Pillow resampling filters Keras' `load_img(interpolation=...)` can use here.
public enum Interpolation: String, Sendable, Codable, CaseIterable {
    /// `Image.NEAREST`, Keras' default.
    case nearest
    /// `Image.BILINEAR` (Pillow's convolution resampler with support scaled on downscale).
    case bilinear
}

/// The input scaling applied after resizing.
public enum Preprocessing: String, Sendable, Codable, CaseIterable {
    /// `keras.applications.vgg16.preprocess_input`: RGB → BGR, minus the ImageNet means
    /// [103.939, 116.779, 123.68] (BGR order), float32.
    case caffe
    /// `ImageDataGenerator(rescale=1./255)`: RGB times float32(1/255).
    case rescale
}

/// What a worker needs to turn image bytes into network input.
public struct ImageSettings: Sendable, Codable, Hashable {
    /// Target height in pixels (Keras `target_size[0]`).
    public var height: Int
    /// Target width in pixels (Keras `target_size[1]`).
    public var width: Int
    public var interpolation: Interpolation
    public var preprocessing: Preprocessing

    public init(height: Int, width: Int, interpolation: Interpolation = .nearest, preprocessing: Preprocessing) {
        self.height = height
        self.width = width
        self.interpolation = interpolation
        self.preprocessing = preprocessing
    }

    /// Floats per prepared image: `height * width * 3` (HWC).
    public var floatsPerImage: Int { height * width * 3 }
}
