#!/usr/bin/env python3
"""fastgw against frp 0.65.0 on loopback, in one run (issue #18; bench/frp.sh fetches frp).

Both publish the same upstreams — iperf3, an nginx serving a 1 KiB file, a TCP echo — from
a client daemon (fastgw agent, frpc) through a server daemon (fastgw gateway, frps) over TLS
(frp's default since 0.50: `transport.tls.enable = true`; fastgw always), each with its
defaults. Measured alike, interleaved per measure: TCP req/s (wrk, 64 connections, 1 KiB),
new connections a second (wrk with `Connection: close`), p50 latency at one connection,
iperf3 both ways, HTTP routed by host (frp's vhostHTTPPort, fastgw's http listener), idle
and loaded RSS of both daemons together, and KiB per open connection (1,000 connections
through the echo service). Prints the figures and fastgw/frp ratios.

Issue #17 adds, in the same run, with the same daemons:
- UDP: a udp service (fastgw) / udp proxy (frp) beside the tcp one to iperf3, on the same
  port number; loss at 200 Mbit/s and the highest rate under 1 % loss, both ways, with a
  direct (no tunnel) reference (bench/udp_loss.py).
- Visitors: the nginx upstream also as a private service reached through `fastgw visitor`'s
  `[[forward]]`, and as an frp stcp proxy reached through a second frpc with an stcp
  visitor; req/s and p50 against the public tcp service of the same daemons.
Every process started here is ended here."""
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "Tests" / "e2e"))
from conftest import ROOT, Process, free_port  # noqa: E402
import udp_loss as udp  # noqa: E402

SECONDS = int(os.environ.get("BENCH_SECONDS", "8"))
FRP = Path(os.environ["FRP_DIR"])
FASTGW = os.environ.get("FASTGW_BIN", str(ROOT / ".build/release/fastgw"))
OPEN = 1000


def run(args):
    return subprocess.run(args, capture_output=True, text=True, timeout=SECONDS * 4 + 60, check=True).stdout


def wrk(port, host="127.0.0.1", close=False, conns=64, latency=False):
    args = ["wrk", f"-t{min(2, conns)}", f"-c{conns}", f"-d{SECONDS}s", "-H", f"Host: {host}"]
    if close:
        args += ["-H", "Connection: close"]
    if latency:
        args.append("--latency")
    out = run(args + [f"http://127.0.0.1:{port}/1k.bin"])
    if latency:
        m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)", out, re.M)
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
        return float(m.group(1)) * scale
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk through port {port}: {errors.group(1)} non-2xx answers\n{out}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def gbits(port, reverse=False):
    out = run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(SECONDS), "-J"] + (["-R"] if reverse else []))
    return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9


def tables(name, entries):
    """TOML text of an array of tables `[[name]]`, one per dict (strings, numbers and lists of
    strings are written as JSON writes them, which TOML reads the same)."""
    return "".join(f"[[{name}]]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in e.items()) for e in entries)


def listening(port):
    """Waits (20 s at most) until something accepts TCP connections on `port`."""
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"nothing listens on port {port}")
            time.sleep(0.1)


def got(port):
    """Waits (20 s at most) until a GET through `port` returns the 1 KiB file."""
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/1k.bin", timeout=5) as r:
                body = r.read()
            if len(body) == 1024:
                return
            failure = f"{len(body)} bytes"
        except OSError as e:
            failure = str(e)
        if time.monotonic() > deadline:
            raise SystemExit(f"no 1 KiB answer through port {port}: {failure}")
        time.sleep(0.2)


def table(title, columns, rows):
    """Prints rows of (name, figures..., higher-is-better) with the first two figures' ratio
    (fastgw/frp). A ratio of two zeros, or over a zero, prints as '-'."""
    print()
    print(f"{title:46}" + "".join(f"{c:>12}" for c in columns) + f"{'fastgw/frp':>12}  better")
    for name, *figures, higher in rows:
        a, b = figures[0], figures[1]
        ratio = f"{a / b:12.2f}" if b else f"{'-':>12}"
        better = "same" if a == b else ("fastgw" if (a > b) == higher else "frp")
        print(f"{name:46}" + "".join(f"{x:12.2f}" for x in figures) + f"{ratio}  {better}")


def rss(*procs):
    return sum(p.rss_kib() for p in procs)


def per_connection(port, procs):
    """KiB the daemons add per open connection through the echo service."""
    time.sleep(1)
    before = rss(*procs)
    socks = []
    try:
        for _ in range(OPEN):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"hello")
            assert s.recv(16) == b"hello"
            socks.append(s)
        time.sleep(2)
        return (rss(*procs) - before) / OPEN
    finally:
        for s in socks:
            s.close()


def main():
    # A SIGTERM (make killed, a timeout) ends the daemons below too: `finally` runs on SystemExit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = []

    def start(args, log, ready=None, group=False):
        p = Process(args, log, group=group)
        started.append(p)
        if ready:
            p.wait_for(ready, timeout=20)
        return p

    with tempfile.TemporaryDirectory(prefix="fastgw-frp-") as tmp:
        d = Path(tmp)
        d.chmod(0o755)  # nginx's workers (nobody) read the file below it
        try:
            subprocess.run([ROOT / "scripts" / "make-pki.sh", d], check=True, capture_output=True)
            nginx_port, echo_port = free_port(), free_port()
            iperf_port = udp.free_tcp_udp_port()  # iperf3 -s binds UDP there for each UDP test
            start(["iperf3", "-s", "-B", "127.0.0.1", "-p", str(iperf_port)], d / "iperf3.log")
            start([sys.executable, ROOT / "Tests" / "e2e" / "peers.py", "echo", echo_port], d / "echo.log", "ready")
            (d / "www").mkdir()
            (d / "www" / "1k.bin").write_bytes(os.urandom(1024))
            (d / "nginx.conf").write_text(f"""worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{ access_log off; sendfile on; keepalive_requests 1000000; server {{ listen 127.0.0.1:{nginx_port}; root {d}/www; }} }}
""")
            start(["nginx", "-c", d / "nginx.conf", "-p", d], d / "nginx.log", group=True)

            # fastgw: gateway + agent, and a visitor for the private service.
            token, visitor_token = os.urandom(16).hex(), os.urandom(16).hex()
            tunnel, fg_http, fg_echo, fg_web, fg_forward = (free_port() for _ in range(5))
            fg_iperf = udp.free_tcp_udp_port()
            (d / "gateway.toml").write_text(f"""[gateway]
public_address = "127.0.0.1"
[control]
socket = "{d}/gateway.sock"
[tunnel]
listen = "127.0.0.1:{tunnel}"
cert = "{d}/gateway.crt"
key = "{d}/gateway.key"
[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.1:{fg_web}"
[[agent]]
name = "bench"
token = "{token}"
allow_ports = [{fg_iperf}, {fg_http}, {fg_echo}]
allow_udp_ports = [{fg_iperf}]
allow_hosts = ["localhost"]
allow_services = ["webpriv"]
[[visitor]]
name = "bench"
token = "{visitor_token}"
allow_services = ["webpriv"]
""")

            def dials(role, secret):
                """The head of an agent's or a visitor's file: its credential and the gateway."""
                return f"""[{role}]
name = "bench"
token = "{secret}"
gateways = ["localhost:{tunnel}"]
ca = "{d}/ca.crt"
[control]
socket = "{d}/{role}.sock"
"""
            (d / "agent.toml").write_text(dials("agent", token) + tables("service", [
                dict(name="iperf", upstream=f"127.0.0.1:{iperf_port}", remote_port=fg_iperf),
                dict(name="web", upstream=f"127.0.0.1:{nginx_port}", remote_port=fg_http),
                dict(name="echo", upstream=f"127.0.0.1:{echo_port}", remote_port=fg_echo),
                dict(name="site", type="http", upstream=f"127.0.0.1:{nginx_port}", hosts=["localhost"]),
                dict(name="iperf-udp", type="udp", upstream=f"127.0.0.1:{iperf_port}", remote_port=fg_iperf),
                dict(name="webpriv", upstream=f"127.0.0.1:{nginx_port}", expose="private")]))
            (d / "visitor.toml").write_text(dials("visitor", visitor_token) + tables("forward", [
                dict(listen=f"127.0.0.1:{fg_forward}", service="webpriv")]))
            gw = start([FASTGW, "gateway", "-c", d / "gateway.toml", "--log-level", "warning"], d / "gateway.log")
            time.sleep(0.5)
            ag = start([FASTGW, "agent", "-c", d / "agent.toml"], d / "agent.log")
            ag.wait_for("services registered", count=2, timeout=20)
            start([FASTGW, "visitor", "-c", d / "visitor.toml", "--log-level", "warning"], d / "visitor.log")

            # frp: frps + frpc with their defaults (TLS on), the same upstreams, and a second frpc
            # as the stcp visitor.
            bind, frp_http, frp_echo, frp_web, frp_visit = (free_port() for _ in range(5))
            frp_iperf = udp.free_tcp_udp_port()
            secret = os.urandom(16).hex()
            (d / "frps.toml").write_text(f"""bindAddr = "127.0.0.1"
bindPort = {bind}
vhostHTTPPort = {frp_web}
auth.token = "{token}"
log.level = "warn"
""")
            frpc_head = f"""serverAddr = "127.0.0.1"
serverPort = {bind}
auth.token = "{token}"
log.level = "warn"
"""
            (d / "frpc.toml").write_text(frpc_head + tables("proxies", [
                dict(name="iperf", type="tcp", localIP="127.0.0.1", localPort=iperf_port, remotePort=frp_iperf),
                dict(name="web", type="tcp", localIP="127.0.0.1", localPort=nginx_port, remotePort=frp_http),
                dict(name="echo", type="tcp", localIP="127.0.0.1", localPort=echo_port, remotePort=frp_echo),
                dict(name="site", type="http", localIP="127.0.0.1", localPort=nginx_port, customDomains=["localhost"]),
                dict(name="iperf-udp", type="udp", localIP="127.0.0.1", localPort=iperf_port, remotePort=frp_iperf),
                dict(name="webpriv", type="stcp", secretKey=secret, localIP="127.0.0.1", localPort=nginx_port)]))
            (d / "frpc-visitor.toml").write_text(frpc_head + tables("visitors", [
                dict(name="webpriv-visitor", type="stcp", serverName="webpriv", secretKey=secret,
                     bindAddr="127.0.0.1", bindPort=frp_visit)]))
            frps = start([FRP / "frps", "-c", d / "frps.toml"], d / "frps.log")
            listening(bind)  # frpc gives up at once when its first login is refused
            frpc = start([FRP / "frpc", "-c", d / "frpc.toml"], d / "frpc.log")
            start([FRP / "frpc", "-c", d / "frpc-visitor.toml"], d / "frpc-visitor.log")
            names = {fg_http: "fastgw tcp", fg_echo: "fastgw echo", fg_web: "fastgw http", frp_http: "frp tcp",
                     frp_echo: "frp echo", frp_web: "frp vhost", fg_forward: "fastgw visitor forward",
                     frp_visit: "frp stcp visitor"}
            for port in names:
                deadline = time.monotonic() + 20
                while True:
                    try:
                        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                            if port in (fg_echo, frp_echo):
                                s.sendall(b"x")
                                if s.recv(1) != b"x":
                                    raise OSError("no echo")
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            logs = "".join(f"--- {p.args[0]}\n{p.text()[-1500:]}" for p in started)
                            raise SystemExit(f"nothing serves {names[port]} on port {port}\n{logs}")
                        time.sleep(0.2)
            time.sleep(2)  # frpc opens its proxies once logged in
            for port in (fg_forward, frp_visit):  # the whole path answers, not only the listener
                got(port)
            fastgw, frp = (gw, ag), (frps, frpc)
            idle = {"fastgw": rss(*fastgw), "frp": rss(*frp)}

            results = []
            print(f"measuring {SECONDS}s each, fastgw then frp ...", file=sys.stderr)

            def both(name, fn, fg_arg, frp_arg, higher=True):
                a, b = fn(fg_arg), fn(frp_arg)
                results.append((name, a, b, higher))

            both("TCP req/s (wrk 64 conn, 1 KiB)", wrk, fg_http, frp_http)
            both("new connections/s (Connection: close)", lambda p: wrk(p, close=True), fg_http, frp_http)
            both("p50 latency at 1 conn (ms)", lambda p: wrk(p, conns=1, latency=True), fg_http, frp_http, higher=False)
            both("iperf3 upload (Gbit/s)", gbits, fg_iperf, frp_iperf)
            both("iperf3 download (Gbit/s)", lambda p: gbits(p, reverse=True), fg_iperf, frp_iperf)
            both("HTTP by host req/s (wrk 64 conn)", lambda p: wrk(p, host="localhost"), fg_web, frp_web)
            loaded = {"fastgw": rss(*fastgw), "frp": rss(*frp)}
            both("KiB per open connection (1,000 echo)", lambda procs: per_connection(procs[0], procs[1]),
                 (fg_echo, fastgw), (frp_echo, frp), higher=False)
            results.insert(0, ("idle RSS, both daemons (MiB)", idle["fastgw"] / 1024, idle["frp"] / 1024, False))
            results.insert(1, ("RSS after the load (MiB)", loaded["fastgw"] / 1024, loaded["frp"] / 1024, False))

            # Visitors, after the measures above so that those keep their conditions: each
            # figure beside the same daemons' public tcp service, measured right before it.
            visits = []
            for name, fn, higher in (("req/s (wrk 64 conn, 1 KiB)", wrk, True),
                                     ("p50 latency at 1 conn (ms)", lambda p: wrk(p, conns=1, latency=True), False)):
                fg_tcp, fg_visit, frp_tcp, frp_stcp = (fn(p) for p in (fg_http, fg_forward, frp_http, frp_visit))
                visits.append((name, fg_visit, frp_stcp, fg_tcp, frp_tcp, higher))

            # UDP: fastgw, frp, then the direct path (the reference), one after the other per measure.
            step = max(2, min(3, SECONDS // 2))  # per run of the search: short, but past iperf3's start
            print(f"UDP: {SECONDS}s at {udp.FIXED_MBIT} Mbit/s each way, then {udp.STEPS} steps of one or two {step}s runs "
                  "per way and path for the rate under 1 % loss ...", file=sys.stderr)
            datagrams = []
            for way, reverse in (("upload", False), ("download", True)):
                loss = [udp.loss(p, udp.FIXED_MBIT, SECONDS, reverse) for p in (fg_iperf, frp_iperf, iperf_port)]
                datagrams.append((f"loss at {udp.FIXED_MBIT} Mbit/s, {way} (%)", *loss, False))
            for way, reverse in (("upload", False), ("download", True)):
                rate = [udp.max_rate(p, step, reverse) for p in (fg_iperf, frp_iperf, iperf_port)]
                datagrams.append((f"max rate < 1 % loss, {way} (Mbit/s)", *rate, True))
            drops = [udp.kernel_drops(p) for p in (fg_iperf, frp_iperf)]

            columns = ("fastgw", "frp 0.65")
            table("", columns, results)
            table(f"UDP, iperf3 -u -l {udp.DATAGRAM}", columns + ("direct",), datagrams)
            table("visitor forward (fastgw) / stcp visitor (frp)", columns + ("fastgw tcp", "frp tcp"), visits)
            for name, fg_visit, frp_stcp, fg_tcp, frp_tcp, _ in visits:
                print(f"{'  visitor / tcp service, ' + name:70}fastgw {fg_visit / fg_tcp:5.2f}   frp {frp_stcp / frp_tcp:5.2f}")
            print(f"\nUDP datagrams the kernel dropped at the public port (receive buffer full), all runs: "
                  f"fastgw {drops[0]}, frp {drops[1]}")
        finally:
            for p in reversed(started):
                p.kill()


if __name__ == "__main__":
    main()
