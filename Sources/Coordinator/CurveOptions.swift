import ArgumentParser
import CLI
import Wire

/// The coordinator's authentication options, one definition for every command that accepts workers
/// (`extract`, `finetune`): CURVE key pair, allow-list, and the explicit consent to plaintext on a network.
struct CurveOptions: ParsableArguments {
    @Option(help: "This coordinator's CURVE key pair (from `keygen`); turns on encryption and the allow-list.")
    var curveKey: String?

    @Option(help: "Directory of the .pub files of the workers allowed in (with --curve-key).")
    var authorizedWorkers: String?

    @Flag(help: "Allow binding a non-loopback address without CURVE (warned about on every start).")
    var insecure = false

    /// Refuses a key without an allow-list (or the reverse), and a plaintext non-loopback endpoint without
    /// `--insecure`.
    func validate(binding endpoints: [String]) throws {
        if (curveKey == nil) != (authorizedWorkers == nil) {
            throw ValidationError("--curve-key and --authorized-workers go together")
        }
        guard curveKey == nil else { return }
        for endpoint in endpoints {
            if let refusal = CurveBindPolicy.refusal(bindingPlaintext: endpoint, insecure: insecure) {
                throw ValidationError(CommandLineRunner.message(for: refusal))
            }
        }
    }

    /// The server side of CURVE, read from the key files; nil without `--curve-key`.
    func serverSetup() throws -> CurveServerSetup? {
        guard let curveKey, let authorizedWorkers else { return nil }
        return try CurveServerSetup(keyFile: curveKey, authorizedWorkersDirectory: authorizedWorkers)
    }
}
