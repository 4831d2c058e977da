import Foundation
import Reporting

/// The random augmentation of a training run, with the meanings of Keras' `ImageDataGenerator` arguments
/// of the same names: `rotation` (`rotation_range`, degrees), `widthShift` / `heightShift` (fraction of
/// the width / height when below 1, else pixels; given as an integer, Keras' int: a whole number of pixels
/// drawn from `0..<n` with a random sign), `shear` (`shear_range`, degrees), `zoom` (the range
/// `[lower, upper]` of the zoom factors, Keras' `zoom_range`), the flips (each with probability ½), the
/// fill mode and fill value (`cval`).
public struct AugmentationSettings: Sendable, Equatable, Codable, CustomStringConvertible {
    public var rotation: Double = 0
    public var widthShift: Double = 0
    public var heightShift: Double = 0
    /// The shift was given as an integer n ≥ 1 (Keras' int): whole pixels `k · ±1` with `k` in `0..<n`.
    public var widthShiftInteger = false
    public var heightShiftInteger = false
    public var shear: Double = 0
    public var zoom: ClosedRange<Double> = 1...1
    public var horizontalFlip = false
    public var verticalFlip = false
    public var fillMode: FillMode = .nearest
    public var fillValue: Double = 0

    /// No augmentation: every image unchanged.
    public static let none = AugmentationSettings()

    /// The recipe's augmentation: `shear_range=0.2, zoom_range=0.2, horizontal_flip=True`.
    public static let recipe: AugmentationSettings = {
        var settings = AugmentationSettings()
        settings.shear = 0.2
        settings.zoom = 0.8...1.2
        settings.horizontalFlip = true
        return settings
    }()

    public init() {}

    /// True when no image is ever changed.
    public var isNone: Bool {
        rotation == 0 && widthShift == 0 && heightShift == 0 && shear == 0 && zoom == 1...1 && !horizontalFlip
            && !verticalFlip
    }

    /// Parses a specification such as `shear=0.2,zoom=0.2,horizontal-flip` or `none`.
    ///
    /// Entries are separated by commas: `rotation=D`, `width-shift=F`, `height-shift=F`, `shear=D`,
    /// `zoom=F` (Keras' `[1−F, 1+F]`) or `zoom=LOW:HIGH`, `horizontal-flip`, `vertical-flip` (optionally
    /// `=true`/`=false`), `fill-mode=nearest|constant|reflect|wrap`, `cval=V`. Each name at most once.
    /// Throws `AugmentationError` naming the entry and what was expected.
    public init(parsing specification: String) throws {
        let text = specification.trimmingCharacters(in: .whitespaces)
        guard !text.isEmpty else { throw AugmentationError(entry: specification, expected: "'none' or entries") }
        if text.lowercased() == "none" { return }
        var seen: Set<String> = []
        for rawEntry in text.split(separator: ",", omittingEmptySubsequences: false) {
            let entry = rawEntry.trimmingCharacters(in: .whitespaces)
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0].trimmingCharacters(in: .whitespaces).lowercased()
            let value = parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : nil
            guard !name.isEmpty else {
                throw AugmentationError(entry: entry, expected: "an entry such as 'zoom=0.2' between the commas")
            }
            guard seen.insert(name).inserted else { throw AugmentationError(entry: entry, expected: "\(name) once") }
            func number(_ what: String) throws -> Double {
                guard let value, let v = Double(value), v.isFinite, v >= 0 else {
                    throw AugmentationError(entry: entry, expected: "\(name)=\(what) (a number, 0 or more)")
                }
                return v
            }
            // Keras treats an int shift range as whole pixels; "3" is an int, "3.0" a float.
            func integer() throws -> Bool {
                guard let value, let n = Int(value) else { return false }
                guard n <= 1_000_000 else {
                    throw AugmentationError(entry: entry, expected: "\(name)=PIXELS of at most 1000000")
                }
                return n >= 1
            }
            func flag() throws -> Bool {
                switch value?.lowercased() {
                case nil, "true", "1", "yes": return true
                case "false", "0", "no": return false
                default: throw AugmentationError(entry: entry, expected: "\(name) or \(name)=true|false")
                }
            }
            switch name {
            case "rotation": rotation = try number("DEGREES")
            case "width-shift":
                widthShift = try number("FRACTION")
                widthShiftInteger = try integer()
            case "height-shift":
                heightShift = try number("FRACTION")
                heightShiftInteger = try integer()
            case "shear": shear = try number("DEGREES")
            case "zoom":
                if let value, value.contains(":") {
                    let bounds = value.split(separator: ":", omittingEmptySubsequences: false).map {
                        Double($0.trimmingCharacters(in: .whitespaces))
                    }
                    guard bounds.count == 2, let low = bounds[0], let high = bounds[1], low > 0, low <= high,
                        high.isFinite
                    else {
                        throw AugmentationError(entry: entry, expected: "zoom=LOW:HIGH with 0 < LOW ≤ HIGH")
                    }
                    zoom = low...high
                } else {
                    let z = try number("RANGE")
                    guard z < 1 else { throw AugmentationError(entry: entry, expected: "zoom=RANGE below 1") }
                    zoom = (1 - z)...(1 + z)
                }
            case "horizontal-flip": horizontalFlip = try flag()
            case "vertical-flip": verticalFlip = try flag()
            case "fill-mode":
                guard let value, let mode = FillMode(rawValue: value.lowercased()) else {
                    throw AugmentationError(entry: entry, expected: "fill-mode=nearest|constant|reflect|wrap")
                }
                fillMode = mode
            case "cval":
                guard let value, let v = Double(value), v.isFinite else {
                    throw AugmentationError(entry: entry, expected: "cval=VALUE (a number)")
                }
                fillValue = v
            case "none":
                throw AugmentationError(entry: entry, expected: "'none' alone")
            default:
                throw AugmentationError(
                    entry: entry,
                    expected: "one of rotation, width-shift, height-shift, shear, zoom, horizontal-flip, "
                        + "vertical-flip, fill-mode, cval")
            }
        }
    }

    /// The specification in the parser's syntax (`none` when nothing is on); parsing it gives these settings.
    public var description: String {
        guard !isNone || fillMode != .nearest || fillValue != 0 else { return "none" }
        var entries: [String] = []
        if rotation != 0 { entries.append("rotation=\(rotation)") }
        if widthShift != 0 {
            entries.append("width-shift=" + (widthShiftInteger ? String(Int(widthShift)) : "\(widthShift)"))
        }
        if heightShift != 0 {
            entries.append("height-shift=" + (heightShiftInteger ? String(Int(heightShift)) : "\(heightShift)"))
        }
        if shear != 0 { entries.append("shear=\(shear)") }
        if zoom != 1...1 { entries.append("zoom=\(zoom.lowerBound):\(zoom.upperBound)") }
        if horizontalFlip { entries.append("horizontal-flip") }
        if verticalFlip { entries.append("vertical-flip") }
        if fillMode != .nearest { entries.append("fill-mode=\(fillMode.rawValue)") }
        if fillValue != 0 { entries.append("cval=\(fillValue)") }
        return entries.joined(separator: ",")
    }

    /// Draws the transform of one image, in Keras' order of draws (`get_random_transform`): rotation,
    /// height shift, width shift, shear, the two zoom factors, horizontal flip, vertical flip; a draw is
    /// taken only for a setting that is on. The ranges are Keras'; the numbers are not NumPy's.
    public func draw(height: Int, width: Int, random: inout AugmentationRandom) -> TransformParameters {
        var p = TransformParameters()
        if rotation != 0 { p.theta = random.uniform(-rotation, rotation) }
        // Keras' int range: `np.random.choice(n) * np.random.choice([-1, 1])`, whole pixels.
        func pixels(_ n: Double) -> Double {
            let k = Double(random.next() % UInt64(n))
            return random.unit() < 0.5 ? -k : k
        }
        if heightShift != 0 {
            if heightShiftInteger {
                p.tx = pixels(heightShift)
            } else {
                p.tx = random.uniform(-heightShift, heightShift)
                if heightShift < 1 { p.tx *= Double(height) }
            }
        }
        if widthShift != 0 {
            if widthShiftInteger {
                p.ty = pixels(widthShift)
            } else {
                p.ty = random.uniform(-widthShift, widthShift)
                if widthShift < 1 { p.ty *= Double(width) }
            }
        }
        if shear != 0 { p.shear = random.uniform(-shear, shear) }
        if zoom != 1...1 {
            p.zx = random.uniform(zoom.lowerBound, zoom.upperBound)
            p.zy = random.uniform(zoom.lowerBound, zoom.upperBound)
        }
        if horizontalFlip { p.flipHorizontal = random.unit() < 0.5 }
        if verticalFlip { p.flipVertical = random.unit() < 0.5 }
        return p
    }

    /// The transform of image `index` in `epoch` of a job seeded with `seed`: independent of who draws it.
    public func parameters(seed: UInt64, epoch: Int, index: Int, height: Int, width: Int) -> TransformParameters {
        var random = AugmentationRandom(seed: seed, epoch: epoch, index: index)
        return draw(height: height, width: width, random: &random)
    }
}

/// A bad augmentation specification: the entry at fault and what was expected there.
public struct AugmentationError: ReportedError, Equatable {
    public var entry: String
    public var expected: String

    public init(entry: String, expected: String) {
        self.entry = entry
        self.expected = expected
    }

    public var subject: String? { "augmentation" }
    public var message: String { "'\(entry)': expected \(expected)" }
    public var description: String { "augmentation: \(message)" }
}
