"""An HTTP/1.1 peer, for the tests of connections h2steer does not parse (spliced).

  http1_peer.py server --listen ADDR:PORT --id NAME   answers every GET with its NAME (keep-alive)
  http1_peer.py client --target ADDR:PORT [--conns N] [--requests M]
      N connections, open together, M GETs on each; prints {"conns": [[NAME per GET], ...]}
"""
import argparse
import http.client
import http.server
import json
import signal
import socketserver
import sys
import threading


def serve(a):
    host, port = a.listen.rsplit(":", 1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = a.id.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True

    srv = Server((host, int(port)), Handler)
    print("READY", a.listen, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=srv.shutdown).start())
    srv.serve_forever()
    return 0


def client(a):
    host, port = a.target.rsplit(":", 1)
    conns = [http.client.HTTPConnection(host, int(port), timeout=10) for _ in range(a.conns)]
    out = []
    for c in conns:
        seen = []
        for _ in range(a.requests):
            c.request("GET", "/")
            r = c.getresponse()
            seen.append(r.read().decode())
        out.append(seen)
    for c in conns:
        c.close()
    print(json.dumps({"conns": out}))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("server")
    s.add_argument("--listen", required=True)
    s.add_argument("--id", required=True)
    c = sub.add_parser("client")
    c.add_argument("--target", required=True)
    c.add_argument("--conns", type=int, default=1)
    c.add_argument("--requests", type=int, default=3)
    a = p.parse_args()
    return serve(a) if a.mode == "server" else client(a)


if __name__ == "__main__":
    sys.exit(main())
