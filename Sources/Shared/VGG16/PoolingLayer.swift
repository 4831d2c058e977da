/// The pooling layers of VGG16 whose output `ConvBase` can return.
public enum PoolingLayer: String, Sendable, Codable, CaseIterable {
    case block1_pool, block2_pool, block3_pool, block4_pool, block5_pool

    /// The number of conv blocks computed to reach this layer (1 … 5).
    public var blockCount: Int {
        switch self {
        case .block1_pool: 1
        case .block2_pool: 2
        case .block3_pool: 3
        case .block4_pool: 4
        case .block5_pool: 5
        }
    }

    /// The number of conv layers computed to reach this layer (2, 4, 7, 10 or 13).
    public var convLayerCount: Int { VGG16Weights.convLayersPerBlock.prefix(blockCount).reduce(0, +) }
}
