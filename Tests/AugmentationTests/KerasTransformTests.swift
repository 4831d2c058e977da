import Augmentation
import Foundation
import HDF5
import TestSupport
import Testing

/// Checks `ImageAugmentation.apply` against tf_keras' `ImageDataGenerator.apply_transform`
/// (Tests/Fixtures/keras/finetune.h5, group /augment, written by gen_finetune.py).
@Suite("Augmentation against Keras' apply_transform")
struct KerasTransformTests {
    static let path = fixturesDirectory() + "/keras/finetune.h5"

    @Test("every recorded transform equals Keras' within one intensity level, every fill mode")
    func matchesKeras() throws {
        let file = try HDF5File.open(Self.path)
        defer { file.close() }
        let group = "augment/"
        let inputDataset = try file.root.dataset(group + "input")
        let (count, height, width) = (inputDataset.shape[0], inputDataset.shape[1], inputDataset.shape[2])
        let pixels = try inputDataset.read(UInt8.self).map(Float.init)
        let expected = try file.root.dataset(group + "output").read(Float.self)
        let index = try file.root.dataset(group + "image_index").read(Int32.self)
        func doubles(_ name: String) throws -> [Double] { try file.root.dataset(group + name).read(Double.self) }
        let (theta, tx, ty, shear, zx, zy) = try (
            doubles("theta"), doubles("tx"), doubles("ty"), doubles("shear"), doubles("zx"), doubles("zy")
        )
        let flipH = try file.root.dataset(group + "flip_horizontal").read(UInt8.self)
        let flipV = try file.root.dataset(group + "flip_vertical").read(UInt8.self)
        let modes = try file.root.dataset(group + "fill_mode").readStrings()
        let cval = try doubles("cval")
        let size = height * width * 3
        #expect(index.allSatisfy { Int($0) < count })
        var modesSeen: Set<FillMode> = []
        for k in index.indices {
            let parameters = TransformParameters(
                theta: theta[k], tx: tx[k], ty: ty[k], shear: shear[k], zx: zx[k], zy: zy[k],
                flipHorizontal: flipH[k] != 0, flipVertical: flipV[k] != 0)
            let mode = try #require(FillMode(rawValue: modes[k]))
            modesSeen.insert(mode)
            var output = [Float](repeating: .nan, count: size)
            pixels.withUnsafeBufferPointer { image in
                ImageAugmentation.apply(
                    parameters, image: image.baseAddress! + Int(index[k]) * size, height: height, width: width,
                    fillMode: mode, fillValue: cval[k], output: &output)
            }
            let reference = expected[(k * size)..<((k + 1) * size)]
            let worst = zip(output, reference).map { abs($0 - $1) }.max() ?? .infinity
            let beyondHalf = zip(output, reference).filter { abs($0 - $1) > 0.5 }.count
            print("apply_transform case \(k) (\(modes[k])): max |difference| = \(worst), \(beyondHalf) beyond 0.5")
            #expect(worst <= 1, "case \(k) \(parameters) \(mode): max difference \(worst)")
        }
        #expect(modesSeen == Set(FillMode.allCases))
    }

    @Test("the identity and pure flips copy pixels exactly")
    func flipsAreExact() {
        let (h, w) = (3, 4)
        let image = (0..<(h * w * 3)).map(Float.init)
        var out = [Float](repeating: 0, count: image.count)
        ImageAugmentation.apply(TransformParameters(), image: image, height: h, width: w, output: &out)
        #expect(out == image)
        ImageAugmentation.apply(
            TransformParameters(flipHorizontal: true, flipVertical: true), image: image, height: h, width: w,
            output: &out)
        for r in 0..<h {
            for c in 0..<w {
                for k in 0..<3 {
                    #expect(out[(r * w + c) * 3 + k] == image[((h - 1 - r) * w + (w - 1 - c)) * 3 + k])
                }
            }
        }
    }
}
