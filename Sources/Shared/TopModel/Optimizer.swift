import Foundation

/// Which optimizer updates the weights, with its hyperparameters; the update rules are tf_keras 2's
/// (`tf_keras/src/optimizers/{sgd,rmsprop,adam}.py`) in float32, the defaults Keras' defaults.
///
/// - SGD: `m ← m·momentum − lr·g`; `w ← w + m`, or with Nesterov `w ← w + m·momentum − lr·g`.
/// - RMSprop: `v ← rho·v + (1−rho)·g²`; `w ← w − lr·g / sqrt(v + ε)` (ε inside the square root).
/// - Adam: `m ← m + (g−m)(1−β₁)`, `v ← v + (g²−v)(1−β₂)`, `α = lr·sqrt(1−β₂ᵗ)/(1−β₁ᵗ)`,
///   `w ← w − m·α / (sqrt(v) + ε)` (ε outside, not bias-corrected).
public enum OptimizerConfiguration: Sendable, Equatable, Codable {
    case sgd(learningRate: Double = 0.01, momentum: Double = 0, nesterov: Bool = false)
    case rmsprop(learningRate: Double = 0.001, rho: Double = 0.9, epsilon: Double = 1e-7)
    case adam(learningRate: Double = 0.001, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-7)

    /// The optimizer called `name` (`sgd`, `rmsprop`, `adam`, as Keras' strings) with Keras' defaults,
    /// the learning rate replaced when given.
    public static func named(_ name: String, learningRate: Double? = nil) throws -> OptimizerConfiguration {
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) {
            throw TopModelError.invalidArgument("learning rate must be a positive number, got \(learningRate)")
        }
        switch name.lowercased() {
        case "sgd": return .sgd(learningRate: learningRate ?? 0.01)
        case "rmsprop": return .rmsprop(learningRate: learningRate ?? 0.001)
        case "adam": return .adam(learningRate: learningRate ?? 0.001)
        default: throw TopModelError.invalidArgument("unknown optimizer '\(name)' (expected sgd, rmsprop or adam)")
        }
    }

    /// Keras' name of the optimizer: `sgd`, `rmsprop`, `adam`.
    public var name: String {
        switch self {
        case .sgd: return "sgd"
        case .rmsprop: return "rmsprop"
        case .adam: return "adam"
        }
    }

    public var learningRate: Double {
        switch self {
        case .sgd(let lr, _, _), .rmsprop(let lr, _, _), .adam(let lr, _, _, _): return lr
        }
    }

    /// A one-line summary, e.g. `sgd(lr=0.01, momentum=0.9, nesterov)`.
    public var summary: String {
        switch self {
        case .sgd(let lr, let momentum, let nesterov):
            return "sgd(lr=\(lr)" + (momentum != 0 ? ", momentum=\(momentum)" : "") + (nesterov ? ", nesterov)" : ")")
        case .rmsprop(let lr, let rho, let eps): return "rmsprop(lr=\(lr), rho=\(rho), epsilon=\(eps))"
        case .adam(let lr, let b1, let b2, let eps): return "adam(lr=\(lr), beta_1=\(b1), beta_2=\(b2), epsilon=\(eps))"
        }
    }
}

/// The state of an optimizer over a fixed list of parameter tensors (slots per tensor) and the step count.
final class OptimizerState {
    let configuration: OptimizerConfiguration
    /// Completed steps (Keras' `optimizer.iterations`).
    private(set) var iterations = 0
    private var first: [[Float]]
    private var second: [[Float]]

    init(_ configuration: OptimizerConfiguration, tensorSizes: [Int]) {
        self.configuration = configuration
        first = tensorSizes.map { [Float](repeating: 0, count: $0) }
        switch configuration {
        case .adam: second = tensorSizes.map { [Float](repeating: 0, count: $0) }
        default: second = tensorSizes.map { _ in [] }
        }
    }

    /// Applies one update to every tensor (`parameters[i]` with gradient `gradients[i]`), then counts the step.
    func apply(parameters: [UnsafeMutableBufferPointer<Float>], gradients: [UnsafeBufferPointer<Float>]) {
        precondition(parameters.count == first.count && gradients.count == first.count)
        for i in parameters.indices { apply(tensor: i, parameters[i], gradients[i]) }
        finishStep()
    }

    /// Updates tensor `index` alone; call `finishStep()` once all tensors of the step are updated.
    func apply(
        tensor index: Int, _ parameters: UnsafeMutableBufferPointer<Float>, _ gradient: UnsafeBufferPointer<Float>
    ) {
        first[index].withUnsafeMutableBufferPointer { m in
            second[index].withUnsafeMutableBufferPointer { v in
                update(parameters, gradient, m, v)
            }
        }
    }

    /// Counts a completed step (Keras' `iterations += 1`).
    func finishStep() { iterations += 1 }

    /// The step count and slots, for checkpoints.
    var slots: OptimizerSlots {
        get { OptimizerSlots(iterations: iterations, first: first, second: second) }
        set {
            precondition(newValue.first.map(\.count) == first.map(\.count))
            precondition(newValue.second.map(\.count) == second.map(\.count))
            iterations = newValue.iterations
            first = newValue.first
            second = newValue.second
        }
    }

    /// The learning rate when the update is plain `w ← w − lr·g` (SGD without momentum), which lets the
    /// caller fold it into the gradient GEMM (`W += −lr · xᵀ·dy`); nil otherwise.
    var plainGradientStep: Float? {
        if case .sgd(let lr, let momentum, _) = configuration, momentum == 0 { return Float(lr) }
        return nil
    }

    private func update(
        _ w: UnsafeMutableBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>,
        _ m: UnsafeMutableBufferPointer<Float>, _ v: UnsafeMutableBufferPointer<Float>
    ) {
        let n = w.count
        switch configuration {
        case .sgd(let lrD, let momentumD, let nesterov):
            let lr = Float(lrD)
            let momentum = Float(momentumD)
            if momentum == 0 {
                for i in 0..<n { w[i] += -g[i] * lr }
            } else if nesterov {
                for i in 0..<n {
                    m[i] = -g[i] * lr + m[i] * momentum
                    w[i] += -g[i] * lr + m[i] * momentum
                }
            } else {
                for i in 0..<n {
                    m[i] = -g[i] * lr + m[i] * momentum
                    w[i] += m[i]
                }
            }
        case .rmsprop(let lrD, let rhoD, let epsD):
            let lr = Float(lrD)
            let rho = Float(rhoD)
            let oneMinusRho = Float(1 - rhoD)
            let eps = Float(epsD)
            for i in 0..<n {
                m[i] = rho * m[i] + oneMinusRho * (g[i] * g[i])
                w[i] += -(lr * g[i] * (1 / (m[i] + eps).squareRoot()))
            }
        case .adam(let lrD, let b1D, let b2D, let epsD):
            let lr = Float(lrD)
            let step = Float(iterations + 1)
            let b1Power = powf(Float(b1D), step)
            let b2Power = powf(Float(b2D), step)
            let alpha = lr * (1 - b2Power).squareRoot() / (1 - b1Power)
            let oneMinusB1 = Float(1 - b1D)
            let oneMinusB2 = Float(1 - b2D)
            let eps = Float(epsD)
            for i in 0..<n {
                m[i] += (g[i] - m[i]) * oneMinusB1
                v[i] += (g[i] * g[i] - v[i]) * oneMinusB2
                w[i] -= (m[i] * alpha) / (v[i].squareRoot() + eps)
            }
        }
    }
}
