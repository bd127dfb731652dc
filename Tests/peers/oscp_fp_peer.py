#!/usr/bin/env python3
"""An OSCP 2.0 Flexibility Provider (the CPMS side) for lmc's tests, written against the OSCP 2.0
message definitions: every body lmc sends is validated with jsonschema against oscp_schemas/*.json.

Prints one JSON object per line on stdout: {"listening": port} first, then {"event": "message", ...}
for each request lmc made (path, headers, body, schema errors, monotonic time) and {"event": "sent", ...}
for each request this peer made to lmc with lmc's answer.

Commands on stdin, one per line:
  silence on|off        stop / resume our heartbeats to lmc
  measure WH            send update_group_measurements: cumulative import energy WH now
  comply MESSAGE        send group_capacity_compliance_error
  post JSON             {"path": "...", "headers": {...}, "body": "raw text"} sent as is to lmc's base URL
"""
import argparse, datetime, http.server, json, os, secrets, ssl, sys, threading, time, urllib.request, urllib.error

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = {}
for f in os.listdir(os.path.join(HERE, "oscp_schemas")):
    if f.endswith(".json"):
        SCHEMAS[f[:-5]] = json.load(open(os.path.join(HERE, "oscp_schemas", f)))
SCHEMAS["handshake_acknowledgment"] = SCHEMAS["handshake_acknowledgement"]

lock = threading.Lock()
out_lock = threading.Lock()


def emit(obj):
    with out_lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


def rfc3339(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class State:
    cp_token = None          # the token lmc gave us in its register: we call lmc with it
    cp_base = None           # lmc's base URL
    registered = False       # we sent our register to lmc
    silent = False
    ack_sent = False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--initial-token", required=True, help="the token lmc uses for its first register")
    ap.add_argument("--fp-token", default="fp-" + secrets.token_hex(12), help="the token we hand lmc in our register")
    ap.add_argument("--require-heartbeat-s", type=int, default=2, help="heartbeat_interval we ask of lmc")
    ap.add_argument("--send-heartbeat-s", type=float, default=1.0, help="how often we send heartbeats to lmc")
    ap.add_argument("--ack-path", default="handshake_acknowledgment", help="handshake_acknowledgment (pyoscp) or handshake_acknowledgement (spec)")
    ap.add_argument("--tls-cert"); ap.add_argument("--tls-key"); ap.add_argument("--cafile")
    args = ap.parse_args()
    state = State()
    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    checker = jsonschema.FormatChecker()
    scheme = "https" if args.tls_cert else "http"

    def call(path, body, headers=None, raw=None):
        if not state.cp_base:
            emit({"event": "error", "why": "lmc's base URL not known yet"}); return None
        url = state.cp_base.rstrip("/") + "/" + path
        h = {"Content-Type": "application/json", "Authorization": "Token " + (state.cp_token or ""), "X-Request-ID": secrets.token_hex(6)}
        if headers is not None: h = headers
        data = raw.encode() if raw is not None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, headers=h, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5, context=ctx) as r:
                res = {"status": r.status, "headers": dict(r.headers)}
        except urllib.error.HTTPError as e:
            res = {"status": e.code, "headers": dict(e.headers)}
        except Exception as e:
            res = {"status": None, "error": str(e)}
        emit({"event": "sent", "path": path, "t": time.monotonic(), **res})
        return res

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            t = time.monotonic()
            name = self.path.rstrip("/").split("/")[-1]
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n)
            errors = []
            try:
                body = json.loads(raw or b"{}")
            except ValueError as e:
                body, errors = None, ["not JSON: %s" % e]
            if body is not None and name in SCHEMAS:
                errors += [f"{'/'.join(map(str, e.path)) or 'body'}: {e.message}"
                           for e in jsonschema.Draft202012Validator(SCHEMAS[name], format_checker=checker).iter_errors(body)]
            elif body is not None:
                errors.append("unknown endpoint " + name)
            auth = self.headers.get("Authorization", "")
            expected = "Token " + (args.fp_token if state.registered else args.initial_token)
            if name == "register" and not state.registered:
                expected = "Token " + args.initial_token
            if auth != expected:
                errors.append(f"Authorization '{auth}' is not '{expected}'")
            if not self.headers.get("X-Request-ID"):
                errors.append("X-Request-ID missing")
            emit({"event": "message", "path": name, "t": t, "body": body, "errors": errors,
                  "headers": {k: v for k, v in self.headers.items() if k.lower().startswith("x-") or k.lower() == "authorization"}})
            status = 400 if errors else 204
            self.send_response(status)
            if errors:
                self.send_header("X-Error-Message", "; ".join(errors)[:200])
            self.send_header("Content-Length", "0")
            self.end_headers()
            if errors:
                return
            if name == "register":
                state.cp_token = body["token"]
                state.cp_base = next(v["base_url"] for v in body["version_url"] if v["version"] == "2.0")

                def reply():
                    time.sleep(0.05)
                    state.registered = True
                    call("register", {"token": args.fp_token,
                                      "version_url": [{"version": "2.0", "base_url": f"{scheme}://127.0.0.1:{server.server_port}/oscp/fp/2.0"}]})
                threading.Thread(target=reply, daemon=True).start()
            elif name == "handshake":
                def ack():
                    time.sleep(0.05)
                    call(args.ack_path, {"required_behaviour": {"heartbeat_interval": args.require_heartbeat_s}})
                    state.ack_sent = True
                threading.Thread(target=ack, daemon=True).start()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), H)
    if args.tls_cert:
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.load_cert_chain(args.tls_cert, args.tls_key)
        server.socket = sctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    emit({"listening": server.server_port, "fp_token": args.fp_token})

    def heartbeats():
        while True:
            time.sleep(args.send_heartbeat_s)
            if state.ack_sent and not state.silent:
                call("heartbeat", {"offline_mode_at": rfc3339(time.time() + 2 * args.send_heartbeat_s)})
    threading.Thread(target=heartbeats, daemon=True).start()

    for line in sys.stdin:
        cmd, _, rest = line.strip().partition(" ")
        if cmd == "silence":
            state.silent = rest == "on"
            emit({"event": "silence", "on": state.silent})
        elif cmd == "measure":
            call("update_group_measurements", {"group_id": "hub-group", "measurements": [
                {"value": float(rest), "phase": "ALL", "unit": "WH", "energy_type": "TOTAL", "direction": "IMPORT", "measure_time": rfc3339(time.time())}]})
        elif cmd == "comply":
            call("group_capacity_compliance_error", {"message": rest})
        elif cmd == "post":
            p = json.loads(rest)
            call(p["path"], None, headers=p.get("headers"), raw=p.get("body", ""))


if __name__ == "__main__":
    main()
