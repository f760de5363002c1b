"""A small HTTP/1.1 application for the HTTP gateway tests, written on raw asyncio streams so
it shows exactly what arrived (framing, trailers, header fields) and keeps connections open.

    GET  /headers        the request head as JSON: {"line", "headers": [[name, value]...], "conn"}
    POST /sha256         reads the body (Content-Length or chunked, trailers kept) and answers
                         JSON {"bytes", "sha256", "trailers", "chunked"}
    GET  /bytes/N        N bytes of the test pattern; ?chunked=1 sends them chunked,
                         ?trailer=1 adds a trailer "x-checksum: <sha256>"
    GET  /sleep/SECS     answers after SECS seconds
    GET  /close          answers with Connection: close and closes
    *    anything else   "<name> <method> <path>\n" (which upstream answered)
Every response carries "x-upstream: <name>" and "x-upstream-conn: <n>" (the connection number).
"""
import asyncio
import hashlib
import itertools
import json

import pattern

_conn_ids = itertools.count(1)


async def read_head(reader):
    raw = await reader.readuntil(b"\r\n\r\n")
    lines = raw[:-4].decode("latin-1").split("\r\n")
    method, path, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.append((name, value.strip()))
    return lines[0], method, path, version, headers


def header(headers, name):
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


async def read_body(reader, headers, sink):
    """Feeds the body to sink(bytes); returns (trailers, chunked)."""
    te = header(headers, "transfer-encoding")
    if te and te.lower().endswith("chunked"):
        trailers = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            await read_exactly(reader, size, sink)
            await reader.readexactly(2)
        while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
            name, _, value = line.decode("latin-1").partition(":")
            trailers.append([name.lower(), value.strip()])
        return trailers, True
    await read_exactly(reader, int(header(headers, "content-length") or 0), sink)
    return [], False


async def read_exactly(reader, length, sink):
    """Feeds `length` body bytes to sink as they arrive."""
    while length:
        data = await reader.read(min(length, 1 << 20))
        if not data:
            raise ConnectionError("eof in body")
        sink(data)
        length -= len(data)


def handler(name):
    async def serve(reader, writer):
        conn = next(_conn_ids)
        try:
            while True:
                try:
                    line, method, path, version, headers = await read_head(reader)
                except asyncio.IncompleteReadError:
                    return
                h = hashlib.sha256()
                n = 0

                def sink(data):
                    nonlocal n
                    h.update(data)
                    n += len(data)

                trailers, chunked = await read_body(reader, headers, sink)
                base = [("x-upstream", name), ("x-upstream-conn", str(conn))]
                route, _, query = path.partition("?")
                close = False
                if route == "/headers":
                    body = json.dumps({"line": line, "headers": headers, "conn": conn}).encode()
                    await respond(writer, 200, base + [("content-type", "application/json")], body)
                elif route == "/sha256":
                    body = json.dumps({"bytes": n, "sha256": h.hexdigest(), "trailers": trailers, "chunked": chunked}).encode()
                    await respond(writer, 200, base, body)
                elif route.startswith("/bytes/"):
                    await send_bytes(writer, int(route[7:]), base, "chunked=1" in query, "trailer=1" in query)
                elif route.startswith("/sleep/"):
                    await asyncio.sleep(float(route[7:]))
                    await respond(writer, 200, base, b"slept\n")
                elif route == "/close":
                    await respond(writer, 200, base + [("connection", "close")], b"bye\n")
                    close = True
                else:
                    await respond(writer, 200, base, f"{name} {method} {path}\n".encode(), head_only=method == "HEAD")
                if close:
                    return
        except (ConnectionError, OSError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
    return serve


async def respond(writer, status, headers, body, head_only=False):
    head = f"HTTP/1.1 {status} OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    head += f"content-length: {len(body)}\r\n\r\n"
    writer.write(head.encode() + (b"" if head_only else body))
    await writer.drain()


async def send_bytes(writer, size, headers, chunked, trailer):
    h = hashlib.sha256()
    if chunked:
        head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        head += "transfer-encoding: chunked\r\n" + ("trailer: x-checksum\r\n" if trailer else "") + "\r\n"
        writer.write(head.encode())
    else:
        head = "HTTP/1.1 200 OK\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        writer.write((head + f"content-length: {size}\r\n\r\n").encode())
    block = pattern.block()
    sent = 0
    while sent < size:
        chunk = block[: min(len(block), size - sent)]
        h.update(chunk)
        writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        await writer.drain()
        sent += len(chunk)
    if chunked:
        writer.write(b"0\r\n" + (f"x-checksum: {h.hexdigest()}\r\n".encode() if trailer else b"") + b"\r\n")
    await writer.drain()
