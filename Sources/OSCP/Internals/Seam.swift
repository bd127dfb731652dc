import COpenSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Every OpenSSL call of the OSCP endpoint goes through here (one C seam, as ModbusBridge does).
enum TLSSeam {
    static func lastError() -> String {
        let code = ERR_get_error()
        guard code != 0 else { return "unknown TLS error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buf, buf.count)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func serverContext(certificate: String, key: String) throws(HTTPError) -> OpaquePointer {
        guard let ctx = SSL_CTX_new(TLS_server_method()) else { throw HTTPError("TLS: \(lastError())") }
        _ = lmc_ssl_ctx_min_tls12(ctx)
        guard SSL_CTX_use_certificate_chain_file(ctx, certificate) == 1 else {
            let e = lastError(); SSL_CTX_free(ctx)
            throw HTTPError("TLS certificate \(certificate): \(e)")
        }
        guard SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1, SSL_CTX_check_private_key(ctx) == 1 else {
            let e = lastError(); SSL_CTX_free(ctx)
            throw HTTPError("TLS key \(key): \(e)")
        }
        return ctx
    }

    /// A client context verifying the peer against `caFile` (or the system's store when nil).
    static func clientContext(caFile: String?) throws(HTTPError) -> OpaquePointer {
        guard let ctx = SSL_CTX_new(TLS_client_method()) else { throw HTTPError("TLS: \(lastError())") }
        _ = lmc_ssl_ctx_min_tls12(ctx)
        let ok = caFile.map { SSL_CTX_load_verify_locations(ctx, $0, nil) } ?? SSL_CTX_set_default_verify_paths(ctx)
        guard ok == 1 else {
            let e = lastError(); SSL_CTX_free(ctx)
            throw HTTPError("TLS CA file \(caFile ?? "(system)"): \(e)")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        return ctx
    }

    static func freeContext(_ ctx: OpaquePointer) { SSL_CTX_free(ctx) }

    static func accept(_ ctx: OpaquePointer, fd: Int32) throws(HTTPError) -> OpaquePointer {
        guard let ssl = SSL_new(ctx) else { throw HTTPError("TLS: \(lastError())") }
        SSL_set_fd(ssl, fd)
        guard SSL_accept(ssl) == 1 else {
            let e = lastError(); SSL_free(ssl)
            throw HTTPError("TLS handshake: \(e)")
        }
        return ssl
    }

    static func connect(_ ctx: OpaquePointer, fd: Int32, host: String) throws(HTTPError) -> OpaquePointer {
        guard let ssl = SSL_new(ctx) else { throw HTTPError("TLS: \(lastError())") }
        SSL_set_fd(ssl, fd)
        var v4 = in_addr()
        if inet_pton(AF_INET, host, &v4) == 1 {
            // An address: the certificate must name it as an IP SAN.
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
        } else {
            _ = lmc_ssl_set_sni(ssl, host)
            SSL_set1_host(ssl, host)
        }
        guard SSL_connect(ssl) == 1 else {
            let e = lastError(); SSL_free(ssl)
            throw HTTPError("TLS handshake with \(host): \(e)")
        }
        return ssl
    }

    static func read(_ ssl: OpaquePointer, _ buf: UnsafeMutableRawPointer, _ n: Int) -> Int { Int(SSL_read(ssl, buf, Int32(n))) }
    static func write(_ ssl: OpaquePointer, _ buf: UnsafeRawPointer, _ n: Int) -> Int { Int(SSL_write(ssl, buf, Int32(n))) }
    static func close(_ ssl: OpaquePointer) { SSL_shutdown(ssl); SSL_free(ssl) }
}
