"""Access policies at the edge (issue #16): `[[policy]]` address rules, request and
connection limits on listeners, agent grants and `[[route_policy]]` hosts, paths and ports,
answered 403/429 over HTTP/1.1 and HTTP/2 and closed at accept on TCP; reload; counters in
stats and `fastgwctl policies`; a flood of distinct clients (PROXY v2 from a trusted local
sender) within the stated memory bound."""
import json
import multiprocessing
import re
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import BIN, free_port
from test_http import service
from test_https import issue

CA = "ca.crt"


def policy_gateway(t, pki, policies, web=None, tls=None, tcp=None, extra_listeners="", agent=None):
    """Adds http (on [::], so IPv6 clients come too), https and tcp listeners with the given
    policy attachments (`agent`: the agent grant's) and the `[[policy]]` tables; the agent
    serves app.test over http."""
    issue(pki, t.dir, "app", ["app.test"])
    t.http_port, t.https_port = free_port(), free_port()

    def attach(p):
        return f"policy = {json.dumps(p)}\n" if p else ""
    gw = (t.dir / "gateway.toml").read_text()
    gw += 'allow_hosts = ["app.test"]\n' + attach(agent)
    gw += f"""
[[listener]]
name = "web"
protocol = "http"
listen = "[::]:{t.http_port}"
{attach(web)}
[[listener]]
name = "tls"
protocol = "https"
listen = "127.0.0.1:{t.https_port}"
cert = "app.crt"
key = "app.key"
{attach(tls)}
[[listener]]
name = "echo"
listen = "127.0.0.1:{t.public_port}"
{attach(tcp)}
{extra_listeners}
{policies}
"""
    (t.dir / "gateway.toml").write_text(gw)
    return gw


def start(t, peer):
    up = peer("httpapp", "one")
    (t.dir / "agent.toml").write_text((t.dir / "agent.toml").read_text() + service("web", up.port, ["app.test"]))
    r = subprocess.run([BIN, "check", "-c", t.dir / "gateway.toml"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t.start_gateway()
    t.start_agent()


def get(port, source="127.0.0.1", path="/hello", dest="127.0.0.1", sock=None, close=True):
    """One HTTP/1.1 request from `source`; returns (status, head text, body bytes)."""
    s = sock
    if s is None:
        family = socket.AF_INET6 if ":" in source else socket.AF_INET
        s = socket.socket(family)
        s.settimeout(10)
        s.bind((source, 0))
        s.connect((dest, port))
    data = b""
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: app.test\r\n{'Connection: close' if close else 'X-Keep: 1'}\r\n\r\n".encode())
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        return 0, "", b""  # closed at accept
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    if sock is None and close:
        s.close()
    status = int(head.split(b" ")[1]) if head else 0
    return status, head.decode(), body


def curl_https(t, source, *args):
    port = t.https_port
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "--cacert", t.dir / "ca.crt", "--interface", source,
                        "--resolve", f"app.test:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                        *args, f"https://app.test:{port}/hello"], capture_output=True, text=True, timeout=60)
    return r.stdout


def open_echo(port, source="127.0.0.1", payload=b"a\n"):
    """A TCP connection from `source` that has echoed `payload` once, left open."""
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    s.sendall(payload)
    assert s.recv(16) == payload
    return s


def tcp_echo(port, source, payload=b"ping\n"):
    """Sends `payload` from `source`; returns what comes back before the gateway closes (b'' when
    the connection was refused at accept)."""
    s = socket.socket()
    s.settimeout(5)
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    try:
        s.sendall(payload)
        out = b""
        while len(out) < len(payload):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        return out
    except (ConnectionResetError, BrokenPipeError):
        return b""
    finally:
        s.close()


OFFICE = """
[[policy]]
name = "office"
allow = ["127.0.0.0/8", "::1"]
deny = ["127.0.0.2"]
"""


def test_address_rules_on_http_https_h2_and_tcp(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    policy_gateway(t, pki, OFFICE, web="office", tls=["office"], tcp="office")
    start(t, peer)
    # HTTP/1.1: allowed IPv4 and IPv6 clients, a denied one (deny wins over the broader allow).
    assert get(t.http_port, "127.0.0.1")[0] == 200
    assert get(t.http_port, "127.0.0.3")[0] == 200
    assert get(t.http_port, "::1", dest="::1")[0] == 200
    status, head, body = get(t.http_port, "127.0.0.2")
    assert status == 403 and b"access denied by policy office" in body and b"request id: " in body, (head, body)
    # HTTPS over HTTP/1.1 and HTTP/2.
    assert curl_https(t, "127.0.0.1", "--http1.1") == "200 1.1"
    assert curl_https(t, "127.0.0.1", "--http2") == "200 2"
    assert curl_https(t, "127.0.0.2", "--http1.1") == "403 1.1"
    assert curl_https(t, "127.0.0.2", "--http2") == "403 2"
    # TCP: the denied client is closed at accept, no stream reaches the agent.
    assert tcp_echo(t.public_port, "127.0.0.1") == b"ping\n"
    streams = t.ctl_json("stats")
    assert tcp_echo(t.public_port, "127.0.0.2") == b""
    time.sleep(0.3)
    assert t.ctl_json("stats")["streams_total"] == streams["streams_total"]

    # Counters: stats (text, JSON, Prometheus) and fastgwctl policies.
    s = t.ctl_json("stats")
    assert s["policy_denied_total"]["office"] == 4 and s["policy_allowed_total"]["office"] >= 6, s
    assert 'policy_denied_total{policy="office"} 4' in t.ctl("stats", "prometheus").stdout
    listing = t.ctl_json("policies")["policies"]
    assert listing == [{
        "name": "office", "rules": "allow=127.0.0.0/8,::1/128 deny=127.0.0.2/32",
        "attached": ["listener web", "listener tls", "listener echo"],
        "allowed": s["policy_allowed_total"]["office"], "denied": 4, "limited": 0, "challenged": 0, "auth_errors": 0,
        "clients": 0}]
    assert "office" in t.ctl("policies").stdout
    # Refusals are logged, counted, at most once per interval per policy.
    t.gateway.wait_for('msg="access denied by policy office"')
    assert t.gateway.count('msg="access denied by policy office"') == 1
    # The access record carries the decision.
    assert t.gateway.count("policy=deny:office") == 3


def test_reload_switches_a_rule_without_dropping_connections(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    gw = policy_gateway(t, pki, OFFICE, web="office", tcp="office")
    start(t, peer)
    # Connections opened under the old rules: a TCP stream and a keep-alive HTTP/1.1 one.
    tcp = open_echo(t.public_port)
    keep = socket.create_connection(("::1", t.http_port), timeout=10)
    assert get(t.http_port, sock=keep, close=False)[0] == 200

    # Now 127.0.0.1 and ::1 are denied.
    (t.dir / "gateway.toml").write_text(gw.replace('deny = ["127.0.0.2"]', 'deny = ["127.0.0.1", "::1"]'))
    t.ctl("reload")
    assert get(t.http_port, "127.0.0.1")[0] == 403
    assert get(t.http_port, "::1", dest="::1")[0] == 403
    assert get(t.http_port, "127.0.0.2")[0] == 200
    assert tcp_echo(t.public_port, "127.0.0.1") == b""
    # The open ones keep the policy they started with.
    tcp.sendall(b"b\n")
    assert tcp.recv(16) == b"b\n"
    assert get(t.http_port, sock=keep, close=False)[0] == 200
    tcp.close()
    keep.close()


RATE = 50
BURST = 20


def test_request_rate_is_held_per_client_with_retry_after(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    policy_gateway(t, pki, f"""
[[policy]]
name = "api"
requests_per_second = {RATE}
burst = {BURST}
""", web="api", tls="api")
    start(t, peer)

    # An HTTP/2 client gets the same answer per stream, with the fields.
    # A bounded load loop at about 5x the limit for 10 s on one keep-alive connection.
    statuses = {}
    other = []

    def bystander():
        for _ in range(20):
            other.append(get(t.http_port, "127.0.0.3")[0])
            time.sleep(0.2)
    th = threading.Thread(target=bystander)
    th.start()
    s = socket.create_connection(("127.0.0.1", t.http_port), timeout=10)
    start_at = time.monotonic()
    seen_429 = None
    for i in range(RATE * 5 * 10):
        due = start_at + i / (RATE * 5)
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        status, head, body = get(t.http_port, sock=s, close=False)
        statuses[status] = statuses.get(status, 0) + 1
        if status == 429 and seen_429 is None:
            seen_429 = head.lower()
    elapsed = time.monotonic() - start_at
    s.close()
    th.join()
    admitted = statuses.get(200, 0)
    expected = RATE * elapsed + BURST
    assert abs(admitted - expected) <= 0.1 * expected, (statuses, elapsed)
    assert set(statuses) == {200, 429}, statuses
    assert "retry-after: 1" in seen_429 and 'ratelimit-policy: "api";q=50;w=1' in seen_429, seen_429
    assert 'ratelimit: "api";r=0;t=1' in seen_429
    assert other == [200] * 20, other
    # HTTP/2: the limit answers per stream.
    r = subprocess.run(["curl", "-s", "--http2", "--cacert", t.dir / "ca.crt", "--resolve", f"app.test:{t.https_port}:127.0.0.1",
                        "-w", "\n=%{http_code} %{http_version}\n", *[f"https://app.test:{t.https_port}/x{i}" for i in range(200)]],
                       capture_output=True, text=True, timeout=60, check=True)
    answers = re.findall(r"^=(\d+) (\S+)$", r.stdout, re.M)
    assert len(answers) == 200 and {v for _, v in answers} == {"2"}, r.stdout[-500:]
    assert ("429", "2") in answers and ("200", "2") in answers
    assert "rate limit of policy api reached (requests)" in r.stdout
    s = t.ctl_json("stats")
    assert s["policy_limited_total"]["api"] >= statuses[429] + 1


def test_connection_limits_close_at_accept(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    policy_gateway(t, pki, """
[[policy]]
name = "conns"
max_connections_per_client = 2
connections_per_second = 1
burst = 3
""", web="conns", tcp="conns")
    start(t, peer)
    held = [open_echo(t.public_port) for _ in range(2)]
    # The third open connection of this client is refused; another client is not.
    assert tcp_echo(t.public_port, "127.0.0.1") == b""
    assert tcp_echo(t.public_port, "127.0.0.5") == b"ping\n"
    for s in held:
        s.close()
    time.sleep(0.3)
    # A place is free again; the refused connection took no token, so one is left of the
    # burst of 3, and then the rate (1/s) is used up.
    assert tcp_echo(t.public_port, "127.0.0.1") == b"ping\n"
    assert tcp_echo(t.public_port, "127.0.0.1") == b""
    time.sleep(1.2)
    assert tcp_echo(t.public_port, "127.0.0.1") == b"ping\n"
    # HTTP connections count too: closed at accept.
    assert get(t.http_port, "127.0.0.6")[0] == 200
    for _ in range(3):
        get(t.http_port, "127.0.0.6")
    assert get(t.http_port, "127.0.0.6")[0] == 0
    assert t.ctl_json("stats")["policy_limited_total"]["conns"] >= 3


def proxy_v2(src, dst="127.0.0.1", sport=40000, dport=80):
    """A PROXY v2 header (PROXY command, TCP over IPv4)."""
    body = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])


def test_a_flood_of_distinct_clients_stays_within_the_table_bound(tunnel, peer, pki):
    """100,000 clients, each named by a PROXY v2 header from the trusted local sender, through a
    rate-limited listener: the policy's table holds at most its 65,536 entries, and the
    gateway's memory grows by no more than the stated bound (about 7 MiB) plus slack."""
    t = tunnel(peer("echo").port)
    flood_port = free_port()
    gw = policy_gateway(t, pki, """
[[policy]]
name = "api"
requests_per_second = 5
""", extra_listeners=f"""
[[listener]]
name = "lb"
protocol = "http"
listen = "127.0.0.1:{flood_port}"
proxy_protocol = true
policy = "api"
""")
    (t.dir / "gateway.toml").write_text(gw.replace("[gateway]\n", '[gateway]\ntrusted_proxies = ["127.0.0.1"]\n', 1))
    start(t, peer)
    pid = t.gateway.proc.pid
    # Warm up: allocator arenas and connection buffers, with the table still small.
    flood(flood_port, 0, 2000)
    before = rss_kib(pid)
    total = 100_000
    # Processes, not threads: the client side must not be the bottleneck.
    with multiprocessing.Pool(8) as pool:
        pool.starmap(flood, [(flood_port, i * total // 8, total // 8) for i in range(8)])
    after = rss_kib(pid)
    print(f"gateway VmRSS {before} KiB before, {after} KiB after {total} clients")
    p = t.ctl_json("policies")["policies"][0]
    assert p["clients"] == 65_536, p
    assert p["allowed"] >= total, p
    # The table's stated bound (65,536 clients, about 112 bytes each: 7 MiB) plus 4 MiB for
    # the allocator and connection churn.
    assert after - before < 7168 + 4096, (before, after)


def flood(port, first, n):
    """`n` connections, each naming client 10.x.y.z (from `first` on) and sending one request
    for a host nobody serves (the policy counts it, routing answers 404)."""
    req = b"GET / HTTP/1.1\r\nHost: nobody.test\r\nConnection: close\r\n\r\n"
    for i in range(first, first + n):
        src = f"10.{(i >> 16) & 0xff}.{(i >> 8) & 0xff}.{i & 0xff}"
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(proxy_v2(src) + req)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        s.close()
        assert data.startswith(b"HTTP/1.1 404"), data[:100]


def test_check_reports_policy_mistakes_with_their_line(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    policy_gateway(t, pki, """
[[policy]]
name = "bad"
allow = ["10.0.0.1/8"]
requests_per_second = 0
""", web="missing")
    r = subprocess.run([BIN, "check", "-c", t.dir / "gateway.toml"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "host bits are set" in r.stderr and "requests_per_second 0 out of range" in r.stderr
    assert 'policy "missing" is not defined by any [[policy]]' in r.stderr
    assert all(":" in line and "gateway.toml:" in line for line in r.stderr.strip().splitlines()), r.stderr


def curl_h2(t, source, path):
    """Status and HTTP version of one HTTPS request over HTTP/2 from `source`."""
    port = t.https_port
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "--http2", "--cacert", t.dir / "ca.crt", "--interface", source,
                        "--resolve", f"app.test:{port}:127.0.0.1", "-o", "/dev/null", "-w", "%{http_code} %{http_version}",
                        f"https://app.test:{port}{path}"], capture_output=True, text=True, timeout=60)
    return r.stdout


ROUTES = OFFICE + """
[[policy]]
name = "slow"
requests_per_second = 1
burst = 1

[[route_policy]]
hosts = ["app.test"]
path_prefix = "/admin"
policy = "office"

# The conflicting case: a more specific table on a sub-path of the office-only one adds its
# rate limit; the office rule still applies there.
[[route_policy]]
hosts = ["*.test"]
path_prefix = "/admin/api"
policy = "slow"
"""


def test_a_route_policy_guards_a_path_and_a_sub_path_only_adds_rules(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    gw = policy_gateway(t, pki, ROUTES)
    start(t, peer)
    # /admin is office-only; the rest of the host is open to everyone.
    assert get(t.http_port, "127.0.0.2", path="/hello")[0] == 200
    status, _, body = get(t.http_port, "127.0.0.2", path="/admin/users")
    assert status == 403 and b"access denied by policy office" in body, body
    assert get(t.http_port, "127.0.0.2", path="/administrator")[0] == 200
    assert curl_h2(t, "127.0.0.2", "/admin") == "403 2"
    assert curl_h2(t, "127.0.0.2", "/hello") == "200 2"
    # The rate limit on /admin/api does not lift the office rule.
    assert get(t.http_port, "127.0.0.2", path="/admin/api/x")[0] == 403
    # An office client passes both: its first /admin/api request, then 429; /admin is unlimited.
    assert get(t.http_port, "127.0.0.3", path="/admin/api/x")[0] == 200
    status, head, _ = get(t.http_port, "127.0.0.3", path="/admin/api/x")
    assert status == 429 and 'ratelimit-policy: "slow";q=1;w=1' in head.lower(), head
    assert [get(t.http_port, "127.0.0.3", path="/admin")[0] for _ in range(3)] == [200] * 3
    listing = {p["name"]: p["attached"] for p in t.ctl_json("policies")["policies"]}
    assert listing == {"office": ["route app.test/admin"], "slow": ["route *.test/admin/api"]}, listing
    assert t.gateway.count("policy=deny:office") >= 3
    # Hostile spellings of the host and path reach the same rule (or are refused as bad requests).
    for host, path in [("APP.TEST.", "/admin"), ("app.test:80", "/admin/"), ("app.test", "/x/../admin"),
                       ("app.test", "//admin"), ("app.test", "/%61dmin"), ("app.test", "/admin?x=1"),
                       ("app.test", "/admin;x=1"), ("app.test", "///admin//users")]:
        c = socket.socket()
        c.settimeout(10)
        c.bind(("127.0.0.2", 0))
        c.connect(("127.0.0.1", t.http_port))
        c.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        answer = b""
        while chunk := c.recv(65536):
            answer += chunk
        c.close()
        assert answer.split(b" ")[1] in (b"403", b"400"), (host, path, answer[:200])

    # A keep-alive connection opened before the reload keeps the attachments it started with.
    keep = socket.socket()
    keep.settimeout(10)
    keep.bind(("127.0.0.2", 0))
    keep.connect(("127.0.0.1", t.http_port))
    assert get(t.http_port, sock=keep, close=False)[0] == 200
    # Reload moves the office rule to /hello: new connections follow it at once.
    (t.dir / "gateway.toml").write_text(gw.replace('path_prefix = "/admin"\n', 'path_prefix = "/hello"\n'))
    t.ctl("reload")
    assert get(t.http_port, "127.0.0.2", path="/admin/users")[0] == 200
    assert get(t.http_port, "127.0.0.2", path="/hello")[0] == 403
    assert curl_h2(t, "127.0.0.2", "/hello") == "403 2"
    assert get(t.http_port, sock=keep, close=False, path="/hello")[0] == 200
    assert get(t.http_port, sock=keep, close=False, path="/admin/users")[0] == 403
    keep.close()


def test_an_agent_grant_guards_its_port_and_hosts_and_a_route_policy_its_port(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    policy_gateway(t, pki, OFFICE + f"""
[[policy]]
name = "no-four"
deny = ["127.0.0.4"]

[[route_policy]]
ports = [{t.public_port}]
policy = "no-four"
""", agent="office")
    start(t, peer)
    # The agent's policy: its TCP port and its host, with no listener policy anywhere.
    assert tcp_echo(t.public_port, "127.0.0.1") == b"ping\n"
    streams = t.ctl_json("stats")["streams_total"]
    assert tcp_echo(t.public_port, "127.0.0.2") == b""
    # The port's route_policy: closed at accept too.
    assert tcp_echo(t.public_port, "127.0.0.4") == b""
    time.sleep(0.3)
    assert t.ctl_json("stats")["streams_total"] == streams
    assert get(t.http_port, "127.0.0.1")[0] == 200
    assert get(t.http_port, "127.0.0.2")[0] == 403
    assert curl_h2(t, "127.0.0.2", "/hello") == "403 2"
    # The port's route_policy is for the port only, not for the agent's hosts.
    assert get(t.http_port, "127.0.0.4")[0] == 200
    listing = {p["name"]: p["attached"] for p in t.ctl_json("policies")["policies"]}
    assert listing == {"office": ["agent test"], "no-four": [f"route port {t.public_port}"]}, listing
    s = t.ctl_json("stats")
    assert s["policy_denied_total"]["office"] == 3 and s["policy_denied_total"]["no-four"] == 1, s


def test_check_reports_route_policy_mistakes_with_their_line(tunnel, peer, pki):
    t = tunnel(peer("echo").port)
    policy_gateway(t, pki, OFFICE + """
[[route_policy]]
path_prefix = "/x"
policy = "office"

[[route_policy]]
ports = [1]
policy = "ghost"
""", agent="nope")
    r = subprocess.run([BIN, "check", "-c", t.dir / "gateway.toml"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "path_prefix needs hosts" in r.stderr and "port 1 is not a TCP port of this gateway" in r.stderr, r.stderr
    assert 'policy "ghost" is not defined' in r.stderr and 'policy "nope" is not defined' in r.stderr, r.stderr
    assert all("gateway.toml:" in line for line in r.stderr.strip().splitlines()), r.stderr
