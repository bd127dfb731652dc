import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every OpenSSL call of the OSCP endpoint goes through here (one C seam, as ModbusBridge does).
/// Every return value that can signal a failure is checked.
///
/// Policy (docs/oscp.md, *Security*): TLS 1.2 or later; OpenSSL security level 2 (RSA/DH ≥ 2048 bits,
/// ECC ≥ 224 bits, no SHA-1 signatures); for TLS 1.2 only ECDHE key exchange with AES-GCM or
/// ChaCha20-Poly1305 (forward secrecy, AEAD); TLS 1.3's default suites; no renegotiation, no compression.
enum TLSSeam {
    static let tls12Ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    static let wantRead = SSL_ERROR_WANT_READ, wantWrite = SSL_ERROR_WANT_WRITE
    static let zeroReturn = SSL_ERROR_ZERO_RETURN, syscall = SSL_ERROR_SYSCALL

    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown TLS error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        ERR_clear_error()
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The common policy of both sides.
    private static func applyPolicy(_ ctx: OpaquePointer) throws(HTTPError) {
        guard lmc_ssl_ctx_min_tls12(ctx) == 1 else { throw HTTPError(.tls, "TLS: cannot require TLS 1.2: \(lastError())") }
        SSL_CTX_set_security_level(ctx, 2)
        guard SSL_CTX_set_cipher_list(ctx, tls12Ciphers) == 1 else { throw HTTPError(.tls, "TLS: cipher policy refused: \(lastError())") }
        lmc_ssl_ctx_no_renegotiation_no_compression(ctx)
    }

    /// Our endpoint's context; with `clientCA` the FP must present a certificate that CA signed (mutual TLS).
    static func serverContext(certificate: String, key: String, clientCA: String? = nil) throws(HTTPError) -> OpaquePointer {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw HTTPError(.tls, "TLS: \(lastError())") }
        do throws(HTTPError) {
            try applyPolicy(ctx)
            guard SSL_CTX_use_certificate_chain_file(ctx, certificate) == 1 else { throw HTTPError(.tls, "TLS certificate \(certificate): \(lastError())") }
            guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
                throw HTTPError(.tls, "TLS key \(key): \(lastError())")
            }
            if let clientCA {
                guard SSL_CTX_load_verify_locations(ctx, clientCA, nil) == 1 else { throw HTTPError(.tls, "TLS client CA file \(clientCA): \(lastError())") }
                SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
            }
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        return ctx
    }

    /// A client context verifying the peer against `caFile` (or the system's store when nil).
    static func clientContext(caFile: String?) throws(HTTPError) -> OpaquePointer {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw HTTPError(.tls, "TLS: \(lastError())") }
        do throws(HTTPError) {
            try applyPolicy(ctx)
            let ok = caFile.map { SSL_CTX_load_verify_locations(ctx, $0, nil) } ?? SSL_CTX_set_default_verify_paths(ctx)
            guard ok == 1 else { throw HTTPError(.tls, "TLS CA file \(caFile ?? "(system)"): \(lastError())") }
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        return ctx
    }

    static func freeContext(_ ctx: OpaquePointer) { SSL_CTX_free(ctx) }

}

/// Whether TLS files load under the policy, without serving: what a config check needs.
public enum TLSFiles {
    /// Our endpoint's certificate and key (and the CA of client certificates, for mutual TLS).
    public static func checkServer(certificate: String, key: String, clientCA: String? = nil) throws(HTTPError) {
        TLSSeam.freeContext(try TLSSeam.serverContext(certificate: certificate, key: key, clientCA: clientCA))
    }

    /// The CA file a client verifies its peer against (nil: the system's store).
    public static func checkClient(caFile: String?) throws(HTTPError) {
        TLSSeam.freeContext(try TLSSeam.clientContext(caFile: caFile))
    }
}

extension TLSSeam {

    /// A session on a connected (non-blocking) socket; nil when OpenSSL cannot make one.
    static func newSession(_ ctx: OpaquePointer, fd: Int32, server: Bool) -> OpaquePointer? {
        guard let ssl = SSL_new(ctx) else { return nil }
        guard SSL_set_fd(ssl, fd) == 1 else { SSL_free(ssl); return nil }
        if server { SSL_set_accept_state(ssl) } else { SSL_set_connect_state(ssl) }
        return ssl
    }

    /// What the FP's certificate must name: its host name (and SNI), or for an address its IP SAN.
    static func verifyPeer(_ ssl: OpaquePointer, host: String) throws(HTTPError) {
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 else { throw HTTPError(.tls, "TLS: cannot verify by IP \(host): \(lastError())") }
        } else {
            guard lmc_ssl_set_sni(ssl, host) == 1 else { throw HTTPError(.tls, "TLS: cannot set SNI \(host): \(lastError())") }
            guard SSL_set1_host(ssl, host) == 1 else { throw HTTPError(.tls, "TLS: cannot verify by name \(host): \(lastError())") }
        }
    }

    /// One handshake step (client or server, as the session was made): 1 done, else see errorCode.
    static func handshake(_ ssl: OpaquePointer) -> Int32 { SSL_do_handshake(ssl) }

    static func errorCode(_ ssl: OpaquePointer, _ rc: Int32) -> Int32 { SSL_get_error(ssl, rc) }

    static func read(_ ssl: OpaquePointer, _ buf: UnsafeMutableRawPointer, _ n: Int) -> Int { Int(SSL_read(ssl, buf, Int32(clamping: n))) }
    static func write(_ ssl: OpaquePointer, _ buf: UnsafeRawPointer, _ n: Int) -> Int { Int(SSL_write(ssl, buf, Int32(clamping: n))) }
    static func close(_ ssl: OpaquePointer) {
        _ = SSL_shutdown(ssl)   // best effort: the peer may be gone
        SSL_free(ssl)
    }
}
