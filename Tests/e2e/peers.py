"""Upstream servers for the end-to-end tests, run as their own processes.

    peers.py echo PORT          echo every byte back; half-close when the client does
    peers.py sink PORT          hash all input; after EOF answer "<bytes> <sha256>\n"
    peers.py source PORT SIZE   send SIZE bytes of the test pattern, then close; prints
                                "sent <n>" lines as it goes (for the slow-reader test)
    peers.py slowhttp PORT SECS answer each HTTP request after SECS seconds, then close
    peers.py httpapp PORT NAME  a keep-alive HTTP/1.1 application (see httpapp.py)
    peers.py authsvc PORT SECS  a forward-auth service answering after SECS (see authpeer.py)
"""
import asyncio
import hashlib
import sys

import pattern


async def echo(reader, writer):
    try:
        while data := await reader.read(256 * 1024):
            writer.write(data)
            await writer.drain()
        writer.write_eof()
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def sink(reader, writer):
    h = hashlib.sha256()
    n = 0
    try:
        while data := await reader.read(256 * 1024):
            h.update(data)
            n += len(data)
        writer.write(f"{n} {h.hexdigest()}\n".encode())
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


def source(size):
    async def handler(reader, writer):
        sent = 0
        block = pattern.block()
        try:
            while sent < size:
                chunk = block[: min(len(block), size - sent)]
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
                print(f"sent {sent}", flush=True)
        except (ConnectionError, OSError):
            pass
        finally:
            print(f"done {sent}", flush=True)
            writer.close()
    return handler


def slowhttp(delay):
    async def handler(reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            await asyncio.sleep(delay)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nslow\n")
            await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
    return handler


async def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "slowhttp":
        handler = slowhttp(float(sys.argv[3]))
    elif mode == "authsvc":
        import authpeer
        handler = authpeer.handler(float(sys.argv[3]))
    elif mode == "httpapp":
        import httpapp
        handler = httpapp.handler(sys.argv[3])
    else:
        handler = {"echo": echo, "sink": sink}.get(mode) or source(int(sys.argv[3]))
    server = await asyncio.start_server(handler, "127.0.0.1", port, backlog=2048, limit=1 << 20)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
