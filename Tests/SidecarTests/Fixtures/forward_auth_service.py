#!/usr/bin/env python3
"""A small forward-auth service for ForwardAuthClientTests: answers by X-Forwarded-Uri.
Prints its port on stdout once listening; runs until terminated."""
import http.server
import socket
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, headers, body=b""):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        uri = self.headers.get("X-Forwarded-Uri", "")
        if uri.startswith("/allow"):
            seen = "|".join([self.command, self.path, self.headers.get("Host", ""),
                             self.headers.get("X-Forwarded-Method", ""), self.headers.get("X-Forwarded-Proto", ""),
                             self.headers.get("X-Forwarded-Host", ""), uri, self.headers.get("X-Forwarded-For", ""),
                             self.headers.get("Cookie", ""), self.headers.get("X-Private", "-")])
            self.reply(200, [("X-Auth-User", "alice"), ("X-Seen", seen), ("X-Not-Copied", "1")], b"ignored")
        elif uri.startswith("/deny"):
            self.reply(401, [("WWW-Authenticate", 'Basic realm="sso"'), ("Content-Type", "text/plain")], b"sign in first")
        elif uri.startswith("/forbidden"):
            self.reply(403, [("Content-Type", "text/plain")], b"not you")
        elif uri.startswith("/redirect"):
            self.reply(302, [("Location", "https://sso.example/sign_in?rd=" + uri), ("Set-Cookie", "csrf=abc; HttpOnly")])
        elif uri.startswith("/slow"):
            time.sleep(3)
            self.reply(200, [])
        elif uri.startswith("/huge"):
            self.send_response(401)
            self.send_header("Content-Length", str(10 << 20))
            self.end_headers()
            try:
                for _ in range(160):
                    self.wfile.write(b"x" * 65536)
            except OSError:
                pass
        elif uri.startswith("/garbage"):
            self.wfile.write(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
            self.close_connection = True
        elif uri.startswith("/error"):
            self.reply(500, [], b"oops")
        else:
            self.reply(404, [])


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    address_family = socket.AF_INET


server = Server(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
