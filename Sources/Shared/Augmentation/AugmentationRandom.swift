/// Counter-based random numbers for augmentation: the stream of an image is a pure function of the job's
/// seed, the epoch and the image's index, so whichever process or thread draws it gets the same values.
///
/// The key is SplitMix64's finaliser applied to the seed, then mixed with the epoch and the index; the
/// stream is SplitMix64 from that key. Value type, no shared state.
public struct AugmentationRandom: Sendable, Equatable {
    private var state: UInt64

    /// The stream of image `index` (its position in the split's file list) in `epoch` (counted from 0).
    public init(seed: UInt64, epoch: Int, index: Int) {
        var key = Self.mix(seed &+ 0x9E37_79B9_7F4A_7C15)
        key = Self.mix(key ^ UInt64(truncatingIfNeeded: epoch) &* 0xD1B5_4A32_D192_ED03)
        key = Self.mix(key ^ UInt64(truncatingIfNeeded: index) &* 0x8CB9_2BA7_2F3D_8DD7)
        state = key
    }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return Self.mix(state)
    }

    /// Uniform in `[0, 1)`, 53 bits of resolution.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in `[low, high)`.
    public mutating func uniform(_ low: Double, _ high: Double) -> Double { low + (high - low) * unit() }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
