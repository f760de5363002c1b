"""A forward-auth service shaped like oauth2-proxy's /oauth2/auth endpoint, for the access
policy tests. It answers each subrequest from its Cookie and Accept fields:

    Cookie session=good        200 with X-Auth-Request-User: alice and -Email
    Cookie session=forbidden   403 with a body
    Accept text/html           302 to a sign-in page (Location) with a CSRF Set-Cookie
    otherwise                  401 with WWW-Authenticate: Bearer and a body

`delay` seconds pass before every answer (a slow service). Each subrequest is printed as a
JSON line "auth {method, path, headers}" so a test can see what the gateway sent.
"""
import asyncio
import json
import urllib.parse


def handler(delay):
    async def serve(reader, writer):
        try:
            raw = await reader.readuntil(b"\r\n\r\n")
            lines = raw[:-4].decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            print("auth " + json.dumps({"method": method, "path": path, "headers": headers}), flush=True)
            if delay:
                await asyncio.sleep(delay)
            cookie = headers.get("cookie", "")
            if "session=good" in cookie:
                status, fields, body = "200 OK", [("X-Auth-Request-User", "alice"), ("X-Auth-Request-Email", "alice@example.com"),
                                                  ("X-Not-Copied", "1")], b""
            elif "session=forbidden" in cookie:
                status, fields, body = "403 Forbidden", [("Content-Type", "text/plain")], b"forbidden by sso\n"
            elif "text/html" in headers.get("accept", ""):
                back = urllib.parse.quote(f"{headers.get('x-forwarded-proto')}://{headers.get('x-forwarded-host')}{headers.get('x-forwarded-uri')}", safe="")
                status = "302 Found"
                fields = [("Location", f"https://sso.test/start?rd={back}"), ("Set-Cookie", "csrf=abc; Path=/; HttpOnly"),
                          ("Content-Type", "text/html")]
                body = b"<a href=\"https://sso.test/start\">sign in</a>\n"
            else:
                status, fields, body = "401 Unauthorized", [("WWW-Authenticate", 'Bearer realm="sso"'), ("Content-Type", "text/plain")], b"sign in\n"
            head = f"HTTP/1.1 {status}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields)
            head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
    return serve
