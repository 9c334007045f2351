"""WebSocket peers for tapmesh's tests, using the independent `websockets` library.

    python ws_echo.py server PORT        echo every message back (prints "ready" once listening)
    python ws_echo.py client URL N       send N messages (text and binary), check each echo, exit 0
"""
import asyncio
import sys

import websockets


async def serve(port: int) -> None:
    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async with websockets.serve(echo, "127.0.0.1", port):
        print("ready", flush=True)
        await asyncio.Future()


async def client(url: str, n: int) -> None:
    # No permessage-deflate: the test counts payload bytes on the wire.
    async with websockets.connect(url, compression=None) as ws:
        for i in range(n):
            message = f"message {i}" if i % 2 == 0 else bytes([i % 256]) * (i * 100 + 1)
            await ws.send(message)
            echoed = await asyncio.wait_for(ws.recv(), timeout=10)
            if echoed != message:
                sys.exit(f"echo {i} differs: sent {message!r:.60}, got {echoed!r:.60}")
    print(f"{n} echoes ok", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(serve(int(sys.argv[2])))
    else:
        asyncio.run(client(sys.argv[2], int(sys.argv[3])))
