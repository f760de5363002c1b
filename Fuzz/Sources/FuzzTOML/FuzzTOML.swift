import FuzzSupport
import Protocol

/// Config files as a daemon reads them on reload: raw bytes through the size and UTF-8
/// checks, the TOML parser, and both roles' validation (DESIGN §9: never a crash).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTOML(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = bytes(data, size)
    do {
        _ = try TOMLParser.parse(bytes: input)
    } catch {
        precondition(error.line >= 1, "an error without a line: \(error)")
        return 0
    }
    guard case .success(let text) = ConfigText.decode(input, file: "fuzz.toml") else { return 0 }
    let token: (String) throws -> String = { _ in "0123456789abcdef0123456789abcdef" }
    _ = GatewayConfig.parse(text: text, file: "/etc/fastgw/fuzz.toml", readFile: token)
    _ = AgentConfig.parse(text: text, file: "/etc/fastgw/fuzz.toml", readFile: token)
    return 0
}
