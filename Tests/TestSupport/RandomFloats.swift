/// Deterministic pseudo-random floats in [low, high) (SplitMix64), for test images.
public func randomFloats(count: Int, seed: UInt64, low: Float = -1, high: Float = 1) -> [Float] {
    var state = seed
    return (0..<count).map { _ in
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return low + (high - low) * Float(z >> 40) / Float(1 << 24)
    }
}
