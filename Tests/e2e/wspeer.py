"""WebSocket peers for the upgrade tests, on the `websockets` library (Debian's
python3-websockets, so run with /usr/bin/python3).

    wspeer.py server PORT          echo server: every message back as it came, "ready" once listening
    wspeer.py client URL CONNECT_HOST CONNECT_PORT [CAFILE]
                                   sends text and binary messages (up to 1 MiB), checks each echo,
                                   closes cleanly; prints JSON {"echoed", "bytes", "close_code", "headers"}
"""
import asyncio
import json
import os
import ssl
import sys

import websockets


async def serve(port):
    async def echo(ws, path=None):
        async for message in ws:
            await ws.send(message)

    async with websockets.serve(echo, "127.0.0.1", port, max_size=4 << 20):
        print("ready", flush=True)
        await asyncio.Future()


async def client(url, host, port, cafile):
    context = None
    if url.startswith("wss://"):
        context = ssl.create_default_context(cafile=cafile)
    async with websockets.connect(url, host=host, port=int(port), ssl=context, max_size=4 << 20,
                                  server_hostname=url.split("//")[1].split(":")[0] if context else None) as ws:
        echoed = 0
        total = 0
        messages = ["hello"] + [os.urandom(n) for n in (1, 125, 126, 65535, 65536, 1 << 20)] + ["bye " * 1000]
        for m in messages:
            await ws.send(m)
            back = await asyncio.wait_for(ws.recv(), 20)
            assert back == m, f"echo differs for a message of {len(m)}"
            echoed += 1
            total += len(m)
        headers = {k.lower(): v for k, v in ws.response_headers.raw_items()}
        await ws.close()
        print(json.dumps({"echoed": echoed, "bytes": total, "close_code": ws.close_code, "headers": headers}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        asyncio.run(serve(int(sys.argv[2])))
    else:
        asyncio.run(client(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5] if len(sys.argv) > 5 else None))
