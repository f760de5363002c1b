import ArgumentParser

#if canImport(Glibc)
import Glibc
#endif

// Exit status contract: 0 OK, 1 ERR from the daemon, 2 usage, 3 cannot connect.
do {
    var command = try Fastgwctl.parseAsRoot()
    try command.run()
} catch let code as ExitCode {
    exit(code.rawValue)
} catch {
    if Fastgwctl.exitCode(for: error) == .success {
        Fastgwctl.exit(withError: error)  // --help, --version, completion scripts
    }
    Output.error("fastgwctl: " + Fastgwctl.message(for: error))
    Output.error("usage: " + Fastgwctl.usageString())
    exit(2)
}
