"""Access policies behind a trusted HTTP proxy (issue #16): a request that a trusted proxy
forwards is judged as the client its X-Forwarded-For names — its own rate bucket and address
rules — while an untrusted sender's X-Forwarded-For is ignored."""
import socket

from test_policy import policy_gateway, start


def get(port, source, xff=None):
    s = socket.socket()
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    extra = f"X-Forwarded-For: {xff}\r\n" if xff else ""
    s.sendall(f"GET /hello HTTP/1.1\r\nHost: app.test\r\n{extra}Connection: close\r\n\r\n".encode())
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    s.close()
    return int(data.split(b" ")[1])


def test_clients_behind_a_trusted_proxy_have_their_own_buckets_and_rules(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    gw = policy_gateway(t, pki, """
[[policy]]
name = "api"
requests_per_second = 1
burst = 1
deny = ["203.0.113.66"]
""", web="api")
    (t.dir / "gateway.toml").write_text(gw.replace("[gateway]\n", '[gateway]\ntrusted_proxies = ["127.0.0.1"]\n', 1))
    start(t, peer)
    # Two clients behind the proxy: one bucket each.
    assert get(t.http_port, "127.0.0.1", "203.0.113.1") == 200
    assert get(t.http_port, "127.0.0.1", "203.0.113.1") == 429
    assert get(t.http_port, "127.0.0.1", "203.0.113.2") == 200
    # The address rules see the named client too.
    assert get(t.http_port, "127.0.0.1", "203.0.113.66") == 403
    # An untrusted sender's claim is ignored: it is judged as itself.
    assert get(t.http_port, "127.0.0.2", "203.0.113.66") == 200
    assert get(t.http_port, "127.0.0.2", "203.0.113.3") == 429
    t.gateway.wait_for('client=203.0.113.66')
