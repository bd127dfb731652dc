#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import TOMLReader

/// The OSCP tokens kept out of lmc.toml: a file of two lines in TOML, `token = "…"` and
/// `fp_token = "…"`, owned by root or the service user and readable by no one else (mode 0600 or 0400),
/// or systemd's `LoadCredential=oscp:/etc/lmc/oscp.credentials` (a relative name is looked up in
/// `$CREDENTIALS_DIRECTORY`).
public enum OSCPCredentials {
    public struct Problem: Error, CustomStringConvertible { public var description: String }
    public static func load(_ name: String) -> Result<(token: String, fpToken: String), Problem> {
        func failure(_ s: String) -> Result<(token: String, fpToken: String), Problem> { .failure(Problem(description: s)) }
        var path = name
        if !name.hasPrefix("/") {
            guard let dir = getenv("CREDENTIALS_DIRECTORY").map({ String(cString: $0) }) else {
                return failure("= \"\(name)\": a relative name is a systemd credential, but CREDENTIALS_DIRECTORY is not set (LoadCredential=\(name):/etc/lmc/…)")
            }
            path = dir + "/" + name
        }
        var st = stat()
        guard stat(path, &st) == 0 else { return failure("= \"\(name)\": cannot read \(path): \(String(cString: strerror(errno)))") }
        guard st.st_mode & 0o077 == 0 else {
            return failure("= \"\(name)\": \(path) is readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))): chmod 600")
        }
        guard st.st_size < 65_536, let f = fopen(path, "r") else { return failure("= \"\(name)\": cannot read \(path)") }
        defer { fclose(f) }
        var bytes = [UInt8](repeating: 0, count: Int(st.st_size))
        let n = fread(&bytes, 1, bytes.count, f)
        let table: TOMLTable
        do { table = try TOML.parse(String(decoding: bytes.prefix(n), as: UTF8.self)) } catch {
            return failure("= \"\(name)\": \(path) \(error)")
        }
        guard case .string(let token)? = table["token"], case .string(let fpToken)? = table["fp_token"], !token.isEmpty, !fpToken.isEmpty else {
            return failure("= \"\(name)\": \(path) must set token = \"…\" and fp_token = \"…\"")
        }
        if let extra = table.keys.first(where: { $0 != "token" && $0 != "fp_token" }) { return failure("= \"\(name)\": \(path): unknown key \(extra)") }
        return .success((token, fpToken))
    }
}

/// A numeric IPv4 or IPv6 address (what the servers bind; no names, no lookups).
public func isNumericIP(_ s: String) -> Bool {
    var v4 = in_addr(), v6 = in6_addr()
    return inet_pton(AF_INET, s, &v4) == 1 || inet_pton(AF_INET6, s, &v6) == 1
}
