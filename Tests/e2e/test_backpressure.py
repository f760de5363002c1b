"""A slow reader must stall the upstream, not fill fastgw's memory."""
import re
import time

from conftest import connect

MiB = 1 << 20


def last_sent(peer_proc):
    found = re.findall(r"sent (\d+)", peer_proc.text())
    return int(found[-1]) if found else 0


def test_slow_reader_bounds_memory_and_stalls_upstream(tunnel, peer):
    source = peer("source", str(1 << 30))
    t = tunnel(source.port)
    t.start_gateway()
    t.start_agent()
    base = (t.gateway.rss_kib(), t.agent.rss_kib())

    s = connect(t.public_port)
    s.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 256 * 1024)
    received = 0
    peak = [0, 0]
    start = time.monotonic()
    while time.monotonic() - start < 20:
        tick = time.monotonic()
        want = MiB
        while want > 0:
            data = s.recv(min(want, 64 * 1024))
            if not data:
                break
            want -= len(data)
            received += len(data)
        peak[0] = max(peak[0], t.gateway.rss_kib())
        peak[1] = max(peak[1], t.agent.rss_kib())
        time.sleep(max(0, 1 - (time.monotonic() - tick)))
    sent = last_sent(source)
    s.close()

    print(f"slow reader: received {received / MiB:.1f} MiB, upstream sent {sent / MiB:.1f} MiB, "
          f"gateway RSS {base[0] // 1024}->{peak[0] // 1024} MiB, agent RSS {base[1] // 1024}->{peak[1] // 1024} MiB")
    assert 15 * MiB <= received <= 25 * MiB
    # Upstream is ahead only by windows and socket buffers, nowhere near the 1 GiB it wants to push.
    assert sent - received < 64 * MiB
    assert peak[0] - base[0] < 48 * 1024
    assert peak[1] - base[1] < 48 * 1024
