"""UDP services (issue #17 item 1): a public UDP port per udp service, one connect-udp
stream per client address (ip:port) carrying datagrams in RFC 9297 capsules, to a real DNS
server (dnsmasq) and iperf3 behind the agent."""
import json
import os
import select
import socket
import struct
import sys
import threading
import subprocess
import time

import pytest

from conftest import BIN, Process, free_port

ANSWER = bytes([192, 0, 2, 1])


def free_udp_port():
    """A loopback port free for UDP and for TCP: dnsmasq binds both and exits if either is taken."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def dnsmasq(tmp_path):
    """dnsmasq in the foreground on a loopback port, serving static records only. A port taken
    between the choice and dnsmasq's bind (parallel tests) is retried with another port."""
    log = tmp_path / "dnsmasq.log"
    for _ in range(3):
        port = free_udp_port()
        p = Process(["dnsmasq", "--no-daemon", "--conf-file=/dev/null", f"--port={port}", "--listen-address=127.0.0.1",
                     "--bind-interfaces", "--no-resolv", "--no-hosts", "--pid-file=", "--user=root",
                     "--address=/test.example/192.0.2.1", "--address=/other.example/192.0.2.2",
                     "--log-facility=-"], log)
        deadline = time.time() + 10
        while time.time() < deadline and p.proc.poll() is None:
            if query_once(port, "test.example", timeout=0.5) == ANSWER:
                return p, port
        p.kill()
    raise AssertionError("dnsmasq did not answer: " + log.read_text()[-2000:])


def dns_query(qid, name):
    labels = b"".join(bytes([len(x)]) + x.encode() for x in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", 1, 1)


def query_once(port, name, timeout=2.0):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(dns_query(7, name), ("127.0.0.1", port))
        try:
            data = s.recv(2048)
        except socket.timeout:
            return None
        return data[-4:]


def add_udp(t, upstream, udp_port, limits="", policy=None):
    """Grants `udp_port` to the test agent and publishes its udp service `dns` there."""
    gw = (t.dir / "gateway.toml").read_text()
    grant = f"allow_ports = [{t.public_port}]\n"
    extra = f"allow_udp_ports = [{udp_port}]\n" + (f'policy = ["{policy}"]\n' if policy else "")
    gw = gw.replace(grant, grant + extra, 1)
    (t.dir / "gateway.toml").write_text(gw + limits)
    with open(t.dir / "agent.toml", "a") as f:
        f.write(f"""
[[service]]
name = "dns"
type = "udp"
upstream = "127.0.0.1:{upstream}"
remote_port = {udp_port}
""")


def kernel_udp_drops():
    """Datagrams the kernel dropped per local UDP port (/proc/net/udp), where any were."""
    drops = {}
    with open("/proc/net/udp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[-1]):
                drops[int(fields[1].split(":")[1], 16)] = int(fields[-1])
    return drops


def udp_stats(t, agent=False):
    return t.ctl_json("stats", agent=agent)


@pytest.fixture
def dns(tmp_path):
    """The port of a dnsmasq serving test.example and other.example."""
    server, port = dnsmasq(tmp_path)
    yield port
    server.kill()


def dns_tunnel(tunnel, dns, limits=""):
    """A gateway and agent publishing dnsmasq (port `dns`) as udp service `dns`; returns
    (tunnel, udp port)."""
    t = tunnel(dns)
    udp_port = free_udp_port()
    add_udp(t, dns, udp_port, limits=limits)
    t.start_gateway()
    t.start_agent()
    return t, udp_port


def test_dns_queries_from_100_client_ports_all_answered(tunnel, dns):
    t = tunnel(dns)
    udp_port = free_udp_port()
    add_udp(t, dns, udp_port, limits="[limits]\nmax_udp_flows_per_ip = 200\n")
    r = subprocess.run([BIN, "check", "-c", t.dir / "agent.toml"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    t.start_gateway()
    t.start_agent()

    # dig, the operator's tool, through the gateway.
    # dig from two fixed ports the 100 sockets below avoid, so that every flow counted is new.
    dig_ports = [free_port(), free_port()]
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(udp_port), "-b", f"127.0.0.1#{dig_ports[0]}", "+short", "+tries=1", "+time=3", "test.example"],
                         capture_output=True, text=True, timeout=20).stdout.split()
    assert out == ["192.0.2.1"], out
    out = subprocess.run(["dig", "@127.0.0.1", "-p", str(udp_port), "-b", f"127.0.0.1#{dig_ports[1]}", "+short", "+tries=1", "+time=3", "other.example"],
                         capture_output=True, text=True, timeout=20).stdout.split()
    assert out == ["192.0.2.2"], out

    # 10,000 queries from 100 client ports, each port one query in flight: all answered. A
    # query unanswered for 2 s is asked again, as resolvers do (UDP on a loaded machine may
    # lose one in the kernel); the retries are reported and must stay rare.
    socks = []
    while len(socks) < 100:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        if s.getsockname()[1] in dig_ports:  # dig's flow from that port may still be alive
            s.close()
            continue
        s.setblocking(False)
        socks.append(s)
    per_port = 100
    sent = {s.fileno(): 0 for s in socks}
    answered = 0
    wrong = 0
    pending = {}
    started = time.time()
    for s in socks:
        s.sendto(dns_query(0, "test.example"), ("127.0.0.1", udp_port))
        sent[s.fileno()] = 1
        pending[s.fileno()] = 0
    by_fd = {s.fileno(): s for s in socks}
    retries = 0
    while pending and time.time() - started < 60:
        ready, _, _ = select.select(list(by_fd[f] for f in pending), [], [], 2)
        if not ready:
            for fd, qid in pending.items():
                by_fd[fd].sendto(dns_query(qid, "test.example"), ("127.0.0.1", udp_port))
                retries += 1
            continue
        for s in ready:
            data = s.recv(2048)
            qid = struct.unpack("!H", data[:2])[0]
            fd = s.fileno()
            if fd not in pending or qid != pending[fd]:
                continue  # the late answer to a query asked again
            if data[-4:] != ANSWER:
                wrong += 1
            answered += 1
            if sent[fd] < per_port:
                pending[fd] = sent[fd]
                s.sendto(dns_query(sent[fd], "test.example"), ("127.0.0.1", udp_port))
                sent[fd] += 1
            else:
                del pending[fd]
    elapsed = time.time() - started
    for s in socks:
        s.close()
    print(f"\n10,000 DNS queries through the tunnel: {answered} answered in {elapsed:.1f} s, {wrong} wrong, "
          f"{retries} asked again")
    assert answered == 100 * per_port and wrong == 0 and retries <= 20

    st = udp_stats(t)
    assert st["udp_flows_total"]["dns"] >= 102
    assert st["udp_datagrams_in"]["dns"] >= 10_002
    assert st["udp_datagrams_out"]["dns"] >= 10_002
    assert st["udp_bytes_in"]["dns"] > 10_000 * 20
    a = udp_stats(t, agent=True)
    assert a["udp_datagrams_in"]["dns"] == st["udp_datagrams_in"]["dns"]
    prom = t.ctl("stats", "prometheus").stdout
    assert 'fastgw_udp_flows_total{service="dns"}' in prom
    assert "udp_datagrams_in[dns]" in t.ctl("stats").stdout


def test_datagrams_of_every_size_keep_their_boundaries(tunnel, tmp_path):
    """A UDP echo behind the agent: datagrams from 0 bytes to the largest IPv4 payload come
    back whole and one for one (no truncation at 2 KiB, no merging)."""
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    stop = threading.Event()

    def serve():
        echo.settimeout(0.2)
        while not stop.is_set():
            try:
                data, peer = echo.recvfrom(65535)
            except socket.timeout:
                continue
            echo.sendto(data, peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        t = tunnel(free_port())
        udp_port = free_udp_port()
        add_udp(t, echo.getsockname()[1], udp_port)
        t.start_gateway()
        t.start_agent()
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.settimeout(3)
        for size in [0, 1, 1400, 2048, 2049, 9000, 16_384, 40_000, 65_507]:
            payload = bytes((i * 7 + size) & 0xff for i in range(size))
            c.sendto(payload, ("127.0.0.1", udp_port))
            assert c.recv(65535) == payload, size
        c.close()
        st = udp_stats(t)
        assert st["udp_datagrams_out"]["dns"] == 9 and st["udp_flows_total"]["dns"] == 1
    finally:
        stop.set()
        thread.join()
        echo.close()


def test_iperf3_udp_through_the_tunnel(tunnel, tmp_path):
    """iperf3 -u at a bounded rate: its control connection over a tcp service and its
    datagrams over a udp service on the same port number. Loss and throughput are reported;
    only a loose bound is asserted (the machine is shared). FASTGW_UDP_RATE sets the rate
    (iperf3 -b, default 200M), e.g. 500M with FASTGW_BIN pointing at a release build."""
    rate = os.environ.get("FASTGW_UDP_RATE", "200M")
    iperf_port = free_port()
    server = Process(["iperf3", "-s", "-p", str(iperf_port), "-1", "--forceflush"], tmp_path / "iperf3-server.log")
    try:
        # Not wait_port: `-1` serves one client, and a probe connection would be it.
        server.wait_for("Server listening")
        t = tunnel(iperf_port)
        add_udp(t, iperf_port, t.public_port)
        t.start_gateway()
        t.start_agent()
        r = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(t.public_port), "-u", "-b", rate, "-l", "1400",
                            "-t", "5", "--json"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr
        report = json.loads(r.stdout)
        assert "sum" in report["end"], r.stdout[-3000:]
        end = report["end"]["sum"]
        received = end["packets"] - end["lost_packets"]
        mbit = received * 1400 * 8 / end["seconds"] / 1e6
        print(f"\niperf3 -u -b {rate} through the tunnel: {mbit:.0f} Mbit/s received, "
              f"loss {end['lost_percent']:.2f} % ({end['lost_packets']}/{end['packets']}), jitter {end['jitter_ms']:.3f} ms")
        # Loose: debug builds on a shared 2-CPU machine; `make bench` measures release builds.
        assert end["packets"] > 0
        assert end["lost_percent"] < 90 and mbit > 10
        print("drops: gateway", udp_stats(t).get("udp_drops_total"), "agent", udp_stats(t, agent=True).get("udp_drops_total"),
              "kernel (socket buffers full, by local port):", kernel_udp_drops())
    finally:
        server.kill()


def test_flows_expire_when_idle_and_policy_denies(tunnel, dns):
    t, udp_port = dns_tunnel(tunnel, dns, limits='[limits]\nudp_idle_timeout = "1s"\n')
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(5)]
    for s in socks:
        s.settimeout(3)
        s.sendto(dns_query(1, "test.example"), ("127.0.0.1", udp_port))
        assert s.recv(2048)[-4:] == ANSWER
    assert udp_stats(t)["udp_flows_active"]["dns"] == 5
    assert udp_stats(t, agent=True)["udp_flows_active"]["dns"] == 5
    deadline = time.time() + 10
    while time.time() < deadline and udp_stats(t)["udp_flows_active"]["dns"] > 0:
        time.sleep(0.2)
    assert udp_stats(t)["udp_flows_active"]["dns"] == 0
    deadline = time.time() + 5
    while time.time() < deadline and udp_stats(t, agent=True)["udp_flows_active"]["dns"] > 0:
        time.sleep(0.2)
    assert udp_stats(t, agent=True)["udp_flows_active"]["dns"] == 0
    # The same client port again: a new flow, answered.
    socks[0].sendto(dns_query(2, "test.example"), ("127.0.0.1", udp_port))
    assert socks[0].recv(2048)[-4:] == ANSWER
    assert udp_stats(t)["udp_flows_total"]["dns"] == 6
    for s in socks:
        s.close()

    # A deny policy on the agent's grant refuses new flows; nothing reaches dnsmasq.
    gw = (t.dir / "gateway.toml").read_text()
    gw = gw.replace(f"allow_udp_ports = [{udp_port}]\n", f'allow_udp_ports = [{udp_port}]\npolicy = ["nolo"]\n')
    (t.dir / "gateway.toml").write_text(gw.replace("[limits]", '[[policy]]\nname = "nolo"\ndeny = ["127.0.0.0/8"]\n[limits]'))
    t.ctl("reload")
    assert query_once(udp_port, "test.example", timeout=1.0) is None
    st = udp_stats(t)
    assert st["udp_drops_total"]["dns:policy"] >= 1
    assert st["policy_denied_total"]["nolo"] >= 1 if "policy_denied_total" in st else True


def test_50000_client_addresses_keep_flows_capped_and_memory_bounded(tunnel, dns):
    """50,000 distinct client addresses (ports on two loopback addresses), one datagram each
    at a bounded rate: the flow table stays at max_udp_flows by ending its least recently
    active flows (counted), the gateway's resident memory stays under a stated bound, and a
    new client is still answered."""
    t, udp_port = dns_tunnel(tunnel, dns, limits='[limits]\nudp_idle_timeout = "60s"\nmax_udp_flows = 4096\nmax_udp_flows_per_ip = 100000\n')
    time.sleep(0.5)
    before = t.gateway.rss_kib()
    query = dns_query(3, "test.example")
    sent = 0
    started = time.time()
    for host in ("127.0.0.1", "127.0.0.2"):
        for port in range(20000, 46000):
            if sent >= 50_000:
                break
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            s.sendto(query, ("127.0.0.1", udp_port))
            s.close()
            sent += 1
            if sent % 1000 == 0:
                # At most ~10,000 new client addresses a second.
                time.sleep(max(0.0, sent / 10_000 - (time.time() - started)))
    time.sleep(1)
    st = udp_stats(t)
    rss = t.gateway.rss_kib()
    active = st["udp_flows_active"]["dns"]
    evicted = st["udp_flows_evicted_total"]["dns"]
    print(f"\n{sent} client addresses in {time.time() - started:.1f} s: {active} flows, {evicted} evicted, "
          f"{st['udp_flows_total']['dns']} in all, gateway RSS {before // 1024} -> {rss // 1024} MiB")
    assert sent == 50_000
    assert active <= 4096
    # Once full, new clients end old flows instead of being refused. How many of the 50,000
    # the gateway saw depends on the machine: the kernel drops datagrams while the port's
    # receive buffer is full, and flows the agent did not answer in time end on their own.
    assert "dns:flow_limit" not in st.get("udp_drops_total", {}), st
    # 4096 flows with their streams: well under 64 MiB more than at start.
    assert rss - before < 64 * 1024, (before, rss)
    # A new client is answered once the flood is over.
    deadline = time.time() + 15
    while query_once(udp_port, "test.example", timeout=1) != ANSWER:
        assert time.time() < deadline, udp_stats(t)


def test_udp_config_errors(tmp_path, tunnel):
    t = tunnel(free_port())
    with open(t.dir / "agent.toml", "a") as f:
        f.write('\n[[service]]\nname = "u"\ntype = "udp"\nupstream = "unix:/run/x.sock"\nremote_port = 53\nproxy_protocol = "v1"\n')
    r = subprocess.run([BIN, "check", "-c", t.dir / "agent.toml"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "agent.toml:" in r.stderr and "udp service's upstream is host:port" in r.stderr, r.stderr
    assert "proxy_protocol does not apply to udp services" in r.stderr, r.stderr
    gw = (t.dir / "gateway.toml").read_text()
    (t.dir / "gateway.toml").write_text(gw + '[limits]\nudp_idle_timeout = "0s"\nmax_udp_flows = 0\n')
    r = subprocess.run([BIN, "check", "-c", t.dir / "gateway.toml"], capture_output=True, text=True)
    assert r.returncode == 1
    assert "udp_idle_timeout must be positive" in r.stderr and "max_udp_flows 0 out of range" in r.stderr, r.stderr


LAUNCH = r"""
import os, socket, sys
port, name = int(sys.argv[1]), sys.argv[2]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
if s.fileno() != 3:
    os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ.update(LISTEN_FDS="1", LISTEN_PID=str(os.getpid()), LISTEN_FDNAMES=name)
os.execv(sys.argv[3], sys.argv[3:])
"""


@pytest.mark.parametrize("by", ["name", "address"])
def test_udp_port_adopted_from_an_inherited_datagram_socket(tunnel, dns, by):
    """A `ListenDatagram=` socket, passed as systemd passes it (LISTEN_FDS), is adopted by its
    name (`udp-PORT`) or by its bound address; a stream listener of the same port number
    does not take it."""
    t = tunnel(dns)
    udp_port = free_udp_port()
    add_udp(t, dns, udp_port)
    name = f"udp-{udp_port}" if by == "name" else "anything"
    gw = Process([sys.executable, "-c", LAUNCH, str(udp_port), name, str(BIN), "gateway", "-c",
                  str(t.dir / "gateway.toml")], t.dir / "activated.log", cwd=t.dir)
    t.gateway = gw
    gw.wait_for("gateway ready")
    assert gw.count('activation="fd 3 ') == 1, gw.text()
    t.start_agent()
    assert query_once(udp_port, "test.example", timeout=3) == ANSWER


def test_flows_per_client_address_are_capped(tunnel, dns):
    """max_udp_flows_per_ip: the sixth client port of one address gets no flow (dropped and
    counted), while a second address still gets one; a flow that ends frees a place."""
    t, udp_port = dns_tunnel(tunnel, dns, limits='[limits]\nmax_udp_flows_per_ip = 5\nudp_idle_timeout = "3s"\n')
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(6)]
    answered = []
    for s in socks:
        s.settimeout(0.5)
        s.sendto(dns_query(1, "test.example"), ("127.0.0.1", udp_port))
        try:
            answered.append(s.recv(2048)[-4:] == ANSWER)
        except socket.timeout:
            answered.append(False)
    assert answered == [True] * 5 + [False]
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.2", 0))
    other.settimeout(3)
    other.sendto(dns_query(2, "test.example"), ("127.0.0.1", udp_port))
    assert other.recv(2048)[-4:] == ANSWER
    st = udp_stats(t)
    assert st["udp_drops_total"]["dns:client_flow_limit"] == 1
    assert st["udp_flows_active"]["dns"] == 6
    # Once the flows expire, the sixth port gets its turn.
    time.sleep(4)
    socks[5].sendto(dns_query(3, "test.example"), ("127.0.0.1", udp_port))
    socks[5].settimeout(3)
    assert socks[5].recv(2048)[-4:] == ANSWER
    for s in socks + [other]:
        s.close()


def test_full_flow_table_evicts_idle_flows_so_new_clients_get_in(tunnel, dns):
    """A flood of spoofed-looking sources (one datagram each from 300 ports of other
    addresses) fills a table of 32 flows: each new source ends the least recently active
    flow instead of being refused, so a real client arriving after the flood is answered,
    and an active client that lost its flow gets a new one at once."""
    t, udp_port = dns_tunnel(tunnel, dns, limits='[limits]\nmax_udp_flows = 32\nmax_udp_flows_per_ip = 1000\nudp_idle_timeout = "60s"\n')
    early = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    early.settimeout(3)
    early.sendto(dns_query(1, "test.example"), ("127.0.0.1", udp_port))
    assert early.recv(2048)[-4:] == ANSWER
    query = dns_query(2, "test.example")
    for i in range(300):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((f"127.0.{1 + i % 3}.{10 + i // 3}", 0))
            s.sendto(query, ("127.0.0.1", udp_port))
        if i % 50 == 49:
            time.sleep(0.05)
    time.sleep(0.5)
    late = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    late.bind(("127.0.0.5", 0))
    late.settimeout(3)
    late.sendto(dns_query(3, "test.example"), ("127.0.0.1", udp_port))
    assert late.recv(2048)[-4:] == ANSWER
    early.sendto(dns_query(4, "test.example"), ("127.0.0.1", udp_port))
    assert early.recv(2048)[-4:] == ANSWER
    st = udp_stats(t)
    assert st["udp_flows_active"]["dns"] <= 32
    assert st["udp_flows_evicted_total"]["dns"] >= 250, st
    assert "dns:flow_limit" not in st.get("udp_drops_total", {}), st
    # The agent let go of the evicted flows' sockets too.
    deadline = time.time() + 5
    while time.time() < deadline and udp_stats(t, agent=True)["udp_flows_active"]["dns"] > 32:
        time.sleep(0.2)
    assert udp_stats(t, agent=True)["udp_flows_active"]["dns"] <= 32
    early.close()
    late.close()


def test_refused_flow_is_remembered_not_reopened_per_datagram(tunnel):
    """An agent that refuses a flow (its upstream name does not resolve: 502): the client's
    next datagrams are dropped and counted (`refused`) without a stream each, for 5 s."""
    t = tunnel(free_port())
    udp_port = free_udp_port()
    add_udp(t, 9, udp_port)
    (t.dir / "agent.toml").write_text((t.dir / "agent.toml").read_text().replace('upstream = "127.0.0.1:9"', 'upstream = "nothing.invalid:9"'))
    t.start_gateway()
    t.start_agent()
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    c.sendto(b"first", ("127.0.0.1", udp_port))
    deadline = time.time() + 5
    while time.time() < deadline and udp_stats(t, agent=True).get("connect_failures_total", {}).get("upstream_unreachable", 0) < 1:
        time.sleep(0.1)
    time.sleep(0.3)
    for i in range(50):
        c.sendto(b"again %d" % i, ("127.0.0.1", udp_port))
    time.sleep(0.5)
    st = udp_stats(t)
    assert st["udp_flows_total"]["dns"] == 1, st
    assert st["udp_drops_total"]["dns:refused"] >= 49, st
    assert udp_stats(t, agent=True)["udp_flows_total"]["dns"] == 1
    # After the refusal is forgotten, the client is tried again (one new stream).
    time.sleep(5)
    c.sendto(b"later", ("127.0.0.1", udp_port))
    time.sleep(0.5)
    assert udp_stats(t)["udp_flows_total"]["dns"] == 2
    c.close()
