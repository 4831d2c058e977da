import Augmentation
import Testing

@Suite("Augmentation settings and draws")
struct AugmentationSettingsTests {
    @Test("the recipe's specification parses to Keras' shear 0.2, zoom [0.8, 1.2] and horizontal flips")
    func recipe() throws {
        let settings = try AugmentationSettings(parsing: "shear=0.2,zoom=0.2,horizontal-flip")
        #expect(settings.shear == 0.2)
        #expect(settings.zoom == 0.8...1.2)
        #expect(settings.horizontalFlip && !settings.verticalFlip)
        #expect(settings.fillMode == .nearest)
        #expect(settings == AugmentationSettings.recipe)
        #expect(try AugmentationSettings(parsing: settings.description) == settings)
    }

    @Test("every Keras name parses, and 'none' turns augmentation off")
    func allNames() throws {
        let settings = try AugmentationSettings(
            parsing: "rotation=40, width-shift=0.2,height-shift=3,shear=10,zoom=0.5:1.5,horizontal-flip=false,"
                + "vertical-flip,fill-mode=reflect,cval=12")
        #expect(settings.rotation == 40 && settings.widthShift == 0.2 && settings.heightShift == 3)
        #expect(settings.shear == 10 && settings.zoom == 0.5...1.5)
        #expect(!settings.horizontalFlip && settings.verticalFlip)
        #expect(settings.fillMode == .reflect && settings.fillValue == 12)
        #expect(try AugmentationSettings(parsing: settings.description) == settings)
        #expect(try AugmentationSettings(parsing: "none").isNone)
        #expect(try AugmentationSettings(parsing: " NONE ") == .none)
        #expect(AugmentationSettings.none.description == "none")
    }

    @Test(
        "a bad specification names the entry and what was expected",
        arguments: [
            ("zoom=abc", "'zoom=abc': expected zoom=RANGE (a number, 0 or more)"),
            (
                "shear=0.2,twist=3",
                "'twist=3': expected one of rotation, width-shift, height-shift, shear, zoom, "
                    + "horizontal-flip, vertical-flip, fill-mode, cval"
            ),
            ("fill-mode=mirror", "'fill-mode=mirror': expected fill-mode=nearest|constant|reflect|wrap"),
            ("shear=0.2,shear=0.3", "'shear=0.3': expected shear once"),
            ("rotation=-5", "'rotation=-5': expected rotation=DEGREES (a number, 0 or more)"),
            ("zoom=1.5", "'zoom=1.5': expected zoom=RANGE below 1"),
            ("zoom=2:1", "'zoom=2:1': expected zoom=LOW:HIGH with 0 < LOW ≤ HIGH"),
            ("shear=0.2,,zoom=0.1", "'': expected an entry such as 'zoom=0.2' between the commas"),
            ("none,shear=1", "'none': expected 'none' alone"),
            (
                "horizontal-flip=maybe",
                "'horizontal-flip=maybe': expected horizontal-flip or horizontal-flip=true|false"
            ),
            ("", "'': expected 'none' or entries"),
        ])
    func badSpecification(specification: String, message: String) {
        #expect(throws: AugmentationError.self) { try AugmentationSettings(parsing: specification) }
        do {
            _ = try AugmentationSettings(parsing: specification)
        } catch let error as AugmentationError {
            #expect(error.message == message)
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    @Test("an image's parameters depend only on the seed, the epoch and the index")
    func drawsAreCounterBased() {
        let settings = try! AugmentationSettings(
            parsing: "rotation=30,width-shift=0.1,height-shift=0.1,shear=5,zoom=0.2,horizontal-flip,vertical-flip")
        // Drawn in different orders, as different workers would.
        let forward = (0..<50).map { settings.parameters(seed: 7, epoch: 3, index: $0, height: 48, width: 40) }
        let backward = (0..<50).reversed().map {
            settings.parameters(seed: 7, epoch: 3, index: $0, height: 48, width: 40)
        }
        #expect(forward == Array(backward.reversed()))
        #expect(Set(forward.map(\.theta)).count == 50)
        let otherEpoch = settings.parameters(seed: 7, epoch: 4, index: 0, height: 48, width: 40)
        let otherSeed = settings.parameters(seed: 8, epoch: 3, index: 0, height: 48, width: 40)
        #expect(otherEpoch != forward[0] && otherSeed != forward[0])
        for p in forward {
            #expect(abs(p.theta) <= 30 && abs(p.shear) <= 5)
            #expect(abs(p.tx) <= 4.8 && abs(p.ty) <= 4.0)
            #expect((0.8...1.2).contains(p.zx) && (0.8...1.2).contains(p.zy))
        }
        let flips = forward.filter(\.flipHorizontal).count
        #expect(flips > 10 && flips < 40)
        #expect(AugmentationSettings.none.parameters(seed: 1, epoch: 0, index: 0, height: 8, width: 8).isIdentity)
    }

    @Test("an integer shift is Keras' int range: whole pixels k·±1 with k in 0..<n; a float one stays a float")
    func integerShifts() throws {
        let settings = try AugmentationSettings(parsing: "width-shift=3,height-shift=2")
        #expect(settings.widthShiftInteger && settings.heightShiftInteger)
        #expect(settings.description == "width-shift=3,height-shift=2")
        #expect(try AugmentationSettings(parsing: settings.description) == settings)
        var widths: Set<Double> = []
        var heights: Set<Double> = []
        for index in 0..<400 {
            let p = settings.parameters(seed: 1, epoch: 0, index: index, height: 40, width: 40)
            widths.insert(p.ty)
            heights.insert(p.tx)
        }
        #expect(widths == [-2, -1, 0, 1, 2], "\(widths.sorted())")
        #expect(heights == [-1, 0, 1], "\(heights.sorted())")
        let float = try AugmentationSettings(parsing: "width-shift=3.0")
        #expect(!float.widthShiftInteger && float.description == "width-shift=3.0")
        let drawn = (0..<50).map { float.parameters(seed: 1, epoch: 0, index: $0, height: 40, width: 40).ty }
        #expect(drawn.contains { $0 != $0.rounded() } && drawn.allSatisfy { abs($0) <= 3 })
        // Keras' int 1 draws choice(1) = 0: no shift at all.
        let one = try AugmentationSettings(parsing: "width-shift=1")
        #expect((0..<20).allSatisfy { one.parameters(seed: 2, epoch: 1, index: $0, height: 8, width: 8).ty == 0 })
        #expect(throws: AugmentationError.self) { try AugmentationSettings(parsing: "width-shift=2000000") }
    }
}
