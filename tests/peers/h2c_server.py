"""An HTTP server that accepts HTTP/2 by `Upgrade: h2c` (and by prior
knowledge), for the proxy's h2c tests: hypercorn, an independent HTTP/2
implementation (python-h2), serving a tiny ASGI app.

Usage: h2c_server.py PORT

Every request is answered 200 with `method path?query version bytes=N`,
where N is the request body's length; `/status/CODE` answers CODE.
"""

import asyncio
import sys

from hypercorn.asyncio import serve
from hypercorn.config import Config


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    path = scope["path"]
    query = scope["query_string"].decode()
    status = 200
    if path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
    target = path + ("?" + query if query else "")
    body = f"{scope['method']} {target} {scope['http_version']} bytes={size}\n".encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def main():
    config = Config()
    config.bind = [f"127.0.0.1:{sys.argv[1]}"]
    config.accesslog = None
    asyncio.run(serve(app, config))


if __name__ == "__main__":
    main()
