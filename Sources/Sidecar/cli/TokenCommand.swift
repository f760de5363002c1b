import ArgumentParser
import Protocol

extension Fastgw {
    /// `fastgw token new`: a fresh agent token, and the line that lets a gateway hold only its
    /// hash (`token_sha256`).
    struct Token: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make agent tokens.", subcommands: [New.self])

        struct New: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract: "Print a new random agent token and the gateway's token_sha256 line for it.")

            func run() throws {
                let token = TokenMaker.make()
                print(token)
                print("token_sha256 = \"\(SHA256.hex(token.utf8))\"")
            }
        }
    }
}

enum TokenMaker {
    /// 32 random bytes (the system generator: getrandom) as 64 hex digits.
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }
}
