"""UDP measures for bench/frp.py (issue #17): loss at a fixed rate and the highest rate with
under 1 % loss, with `iperf3 -u` (1200-byte datagrams) against an `iperf3 -s` upstream, either
way. iperf3's UDP test keeps its control connection on TCP, so a path is measured through a
port that carries both: a tcp and a udp service (fastgw) or proxy (frp) on the same number."""
import json
import math
import socket
import subprocess
import time

DATAGRAM = 1200
FIXED_MBIT = 200
# The search: geometric bisection of [LOW, HIGH] Mbit/s in STEPS steps, so the answer is within
# (HIGH/LOW) ** (1 / 2**STEPS) = 16 % of the true edge; 0 when even the lowest rate tried lost 1 %.
LOW, HIGH, STEPS = 25, 3200, 5


def free_tcp_udp_port():
    """A loopback port number free for TCP and for UDP alike."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


def kernel_drops(port):
    """Datagrams the kernel dropped (receive buffer full) at the UDP sockets bound to `port`
    now open: at a daemon's public port, those of every run since it bound it."""
    drops = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if int(fields[1].rsplit(":", 1)[1], 16) == port:
                    drops += int(fields[-1])
    return drops


def loss(port, mbit, seconds, reverse=False):
    """Percent of the datagrams sent at `mbit` that the receiver did not get. Counted from bytes
    (sent against received) rather than iperf3's sequence gaps, which miss losses at the end."""
    args = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-u", "-b", f"{mbit:.0f}M", "-l", str(DATAGRAM),
            "-t", str(seconds), "-J"] + (["-R"] if reverse else [])
    for attempt in range(3):
        # iperf3's server takes a moment to listen again after a UDP test ("server is busy").
        r = subprocess.run(args, capture_output=True, text=True, timeout=seconds * 4 + 30)
        report = json.loads(r.stdout) if r.stdout.strip().startswith("{") else {}
        if r.returncode == 0 and "sum_received" in report.get("end", {}):
            end = report["end"]
            sent, received = end["sum_sent"]["bytes"], end["sum_received"]["bytes"]
            if sent == 0:
                raise SystemExit(f"iperf3 -u through port {port} sent nothing\n{r.stdout[-2000:]}")
            return max(0.0, 100.0 * (1 - received / sent))
        time.sleep(1 + attempt)
    raise SystemExit(f"iperf3 -u through port {port} failed: {report.get('error', r.stderr)}")


def max_rate(port, seconds, reverse=False):
    """The highest rate (Mbit/s) tried that lost under 1 %, in STEPS steps of one or two short
    runs: a rate that fails is tried once more, because on a shared machine a run loses
    datagrams when another process takes the CPU, never the other way round."""
    low, high, best = LOW, HIGH, 0.0
    for _ in range(STEPS):
        mid = math.sqrt(low * high)
        if any(loss(port, mid, seconds, reverse) < 1.0 for _ in range(2)):
            low, best = mid, mid
        else:
            high = mid
    return best
