"""An HTTP echo service for the web view's XSS test (standard library only).

On $PORT (127.0.0.1): /health answers "ok"; any other GET, POST or PUT answers
200 with an HTML body that repeats the path, the request's X-Note header and
its body, with a hostile X-Reply header (gzip-compressed under /gz/); each request's path is printed to
stdout (so to the service's log and `service.log` events)."""

import gzip
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REPLY_HEADER = '<svg onload="window.__xss=13">'


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, body: bytes) -> None:
        zipped = self.path.startswith("/gz/")
        if zipped:
            body = gzip.compress(body)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        if zipped:
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Reply", REPLY_HEADER)
        self.end_headers()
        self.wfile.write(body)

    def echo(self, body: bytes) -> None:
        if self.path == "/health":
            data = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        print(f"echo: {self.command} {self.path}", flush=True)
        note = self.headers.get("X-Note", "")
        page = f"<html><body>path={self.path} note={note} body={body.decode('utf-8', 'replace')}</body></html>"
        self.answer(page.encode("utf-8"))

    def do_GET(self) -> None:
        self.echo(b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.echo(self.rfile.read(length))

    def do_PUT(self) -> None:
        self.do_POST()

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        # tapmesh's ready probe hangs up once it has the status line: no
        # traceback in the log for that (the tests read the log's last lines).
        pass


server = Server(("127.0.0.1", int(os.environ["PORT"])), Handler)
print('echo: listening; <img src=x onerror="window.__xss=12">', flush=True)
server.serve_forever()
