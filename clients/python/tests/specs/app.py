"""The tests' two small HTTP services (standard library only).

    python3 app.py front     # on $PORT: /hello, /json, /fail, /chain (calls the backend), /health
    python3 app.py backend   # on $PORT: /item, /health
"""

import json
import os
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLE = sys.argv[1]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def send(self, status, body, content_type="text/plain; charset=utf-8"):
        data = body.encode("utf-8") if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Served-By", ROLE)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self.send(200, "ok")
        if ROLE == "backend" and self.path == "/item":
            return self.send(200, json.dumps({"sku": "A-7", "qty": 3}), "application/json")
        if ROLE == "front":
            if self.path == "/hello":
                return self.send(200, "hello")
            if self.path == "/json":
                return self.send(200, json.dumps({"ok": True, "n": 7}), "application/json")
            if self.path == "/fail":
                return self.send(500, "it broke")
            if self.path == "/chain":
                url = f"http://{os.environ['BACKEND_HOSTPORT']}/item"
                try:
                    with urllib.request.urlopen(url, timeout=5) as answer:
                        item = answer.read()
                except urllib.error.HTTPError as e:
                    # The backend failed: say so, as a gateway does.
                    return self.send(502, e.read())
                # The backend connection is closed before front answers.
                return self.send(200, item, "application/json")
        return self.send(404, "no such page")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        return self.send(201, body or b"{}", "application/json")

    def log_message(self, format, *args):
        # No access log: each line would be a service.log event, logged
        # after the exchange's own events or not, and the tests want a
        # timeline that only their own steps change, in an order they know.
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
print(f"{ROLE}: listening on {os.environ['PORT']}", flush=True)
server.serve_forever()
