"""Peers of the redaction tests: an HTTP login server and a gRPC one, both
answering with secrets of their own (the constants below, which the tests
know too). Neither prints anything about the requests it serves, so the
services' logs hold no secret.

    login_peers.py http PORT   POST /login (JSON or form): 200 with
                               Set-Cookie: session=HTTP_SESSION and a JSON
                               body {"user", "access_token": HTTP_TOKEN,
                               "echo": the request body as JSON, or null};
                               GET anything: {"ok": true}
    login_peers.py grpc PORT   tapmesh.test.Login/SignIn (tests/peers/
                               login.proto) with server reflection; replies
                               {user, session_token: GRPC_SESSION} with the
                               initial metadata x-auth-token: GRPC_META
"""

import json
import os
import sys
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HTTP_SESSION = "srv-session-7Yq2xW9pLm4Nc8Rt"
HTTP_TOKEN = "srv-token-Hd83kQp0Zr5Vx2Lw9sTy"
GRPC_SESSION = "grpc-session-Jk28fPz1Qw7Rn4Ve"
GRPC_META = "grpc-meta-Bx61mTq9Ld3Wc7Hs"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def reply(self, status, body, cookies=()):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for cookie in cookies:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, {"ok": True})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        try:
            echo = json.loads(body)
        except ValueError:
            echo = None
        cookies = (
            f"session={HTTP_SESSION}; Path=/; HttpOnly",
            "theme=dark; Path=/",
        )
        self.reply(200, {"user": "alice", "access_token": HTTP_TOKEN, "echo": echo}, cookies)


def serve_http(port):
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.serve_forever()


def serve_grpc(port):
    import grpc
    from grpc_reflection.v1alpha import reflection

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    protos, services = grpc.protos_and_services("login.proto")

    class Login(services.LoginServicer):
        def SignIn(self, request, context):
            context.send_initial_metadata((("x-auth-token", GRPC_META),))
            return protos.SignInReply(user=request.user, session_token=GRPC_SESSION)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    services.add_LoginServicer_to_server(Login(), server)
    names = (protos.DESCRIPTOR.services_by_name["Login"].full_name, reflection.SERVICE_NAME)
    reflection.enable_server_reflection(names, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "http":
        serve_http(int(sys.argv[2]))
    elif len(sys.argv) == 3 and sys.argv[1] == "grpc":
        serve_grpc(int(sys.argv[2]))
    else:
        sys.exit(__doc__)
