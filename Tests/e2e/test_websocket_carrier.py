"""The WebSocket carrier (DESIGN §2.1): the tunnel's HTTP/2 bytes inside binary WebSocket
messages, asked for with `transport = "websocket"`, or chosen by `transport = "auto"` when
something between agent and gateway passes only WebSocket upgrades (here: nginx terminating
TLS and refusing any other upgrade)."""
from conftest import connect, echo_roundtrip, free_port, recv_all, run_nginx

MiB = 1 << 20


def carriers(t):
    return {c["carrier"] for a in t.ctl_json("agents")["agents"] for c in a["connections"]}


def test_websocket_transport_carries_the_tunnel(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port, transport="websocket")
    t.start_gateway()
    agent = t.start_agent()
    assert carriers(t) == {"websocket"}
    assert agent.count("carrier=websocket") >= 2, agent.text()
    echo_roundtrip(t.public_port, 128 * MiB)
    # Many short streams, half-closes included.
    for i in range(50):
        s = connect(t.public_port)
        s.sendall(b"x" * i + b"\n")
        s.shutdown(1)
        assert recv_all(s) == b"x" * i + b"\n"
    assert {c["state"] for c in t.ctl_json("connections", agent=True)["connections"]} == {"connected"}


def nginx_websocket_only(d, pki, listen_port, gateway_port):
    """nginx terminating TLS in front of the gateway's tunnel listener, passing the tunnel path
    on only as a WebSocket upgrade: what an HTTPS proxy that knows WebSocket and nothing else
    does to the direct carrier's `Upgrade: fastgw-h2`."""
    return run_nginx(d, listen_port, f"""
  access_log {d}/access.log;
  server {{
    listen 127.0.0.1:{listen_port} ssl;
    ssl_certificate {pki}/gateway.crt;
    ssl_certificate_key {pki}/gateway.key;
    location = /.fastgw/v1/tunnel {{
      if ($http_upgrade != "websocket") {{ return 400 "only WebSocket upgrades pass here\\n"; }}
      proxy_pass https://127.0.0.1:{gateway_port};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host localhost;
      proxy_ssl_server_name on;
      proxy_ssl_name localhost;
      proxy_read_timeout 1h;
      proxy_buffering off;
    }}
  }}
""")


def test_auto_falls_back_to_websocket_behind_a_websocket_only_proxy(tunnel, peer, tmp_path, pki):
    echo = peer("echo")
    proxy_port = free_port()
    t = tunnel(echo.port, connections=1, agent_port=proxy_port)
    proxy = nginx_websocket_only(tmp_path / "proxy", pki, proxy_port, t.tunnel_port)
    try:
        t.start_gateway()
        agent = t.start_agent(wait=False)
        agent.wait_for("services registered", timeout=20)
        # The direct carrier's handshake met the proxy's 400; the next dial used WebSocket.
        assert "only WebSocket upgrades pass here" in agent.text()
        assert agent.count("next dial uses the WebSocket carrier") >= 1, agent.text()
        assert carriers(t) == {"websocket"}
        echo_roundtrip(t.public_port, 32 * MiB)
    finally:
        proxy.kill()


def test_auto_uses_the_direct_carrier_when_nothing_is_in_the_way(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port, transport="auto")
    t.start_gateway()
    agent = t.start_agent()
    assert carriers(t) == {"h2"}
    assert "WebSocket carrier" not in agent.text()


def test_gateway_refusal_does_not_switch_carriers(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port, agent_token="0" * 32)  # a token the gateway does not know
    t.start_gateway()
    agent = t.start_agent(wait=False)
    agent.wait_for("401", timeout=10)
    assert "WebSocket carrier" not in agent.text()
