"""Data integrity through a TCP service: bulk, small writes, one huge write, many connections."""
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor

import pattern
from conftest import connect, echo_roundtrip, recv_all

MiB = 1 << 20


def test_256_mib_each_way_through_echo(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port)
    t.start_gateway()
    t.start_agent()

    echo_roundtrip(t.public_port, 256 * MiB)


def test_many_small_writes_then_half_close(tunnel, peer):
    sink = peer("sink")
    t = tunnel(sink.port)
    t.start_gateway()
    t.start_agent()

    s = connect(t.public_port, timeout=60)
    block = pattern.block()
    expected = hashlib.sha256()
    total = 0
    for i in range(0, 16 * MiB, 1000):  # 16,777 writes of 1000 bytes
        piece = block[i % MiB : i % MiB + 1000]
        s.sendall(piece)
        expected.update(piece)
        total += len(piece)
    s.shutdown(1)
    answer = recv_all(s).decode().split()
    s.close()
    assert answer == [str(total), expected.hexdigest()]


def test_one_256_mib_write(tunnel, peer):
    sink = peer("sink")
    t = tunnel(sink.port)
    t.start_gateway()
    t.start_agent()

    data = pattern.block() * 256
    s = connect(t.public_port, timeout=60)
    s.sendall(data)
    s.shutdown(1)
    answer = recv_all(s).decode().split()
    s.close()
    assert answer == [str(len(data)), hashlib.sha256(data).hexdigest()]


def test_256_mib_download(tunnel, peer):
    size = 256 * MiB
    source = peer("source", str(size))
    t = tunnel(source.port)
    t.start_gateway()
    t.start_agent()

    s = connect(t.public_port, timeout=60)
    h = hashlib.sha256()
    n = 0
    while data := s.recv(MiB):
        h.update(data)
        n += len(data)
    s.close()
    assert n == size
    assert h.hexdigest() == pattern.sha256_of(size)


def test_1000_concurrent_connections_over_one_tunnel_connection(tunnel, peer):
    echo = peer("echo")
    t = tunnel(echo.port, connections=1)
    t.start_gateway()
    t.start_agent()

    socks = [connect(t.public_port, timeout=30) for _ in range(1000)]
    payloads = [f"connection {i} ".encode() * (1 + i % 50) for i in range(1000)]

    def roundtrip(i):
        s = socks[i]
        s.sendall(payloads[i])
        s.shutdown(1)
        data = recv_all(s)
        s.close()
        return data == payloads[i]

    with ThreadPoolExecutor(max_workers=200) as pool:
        results = list(pool.map(roundtrip, range(1000)))
    assert results.count(True) == 1000
    assert t.gateway.count("agent connected") == 1


def test_upstream_named_by_host_name(tunnel, peer):
    """A host name's dial tries each address it resolves to with the same handler (where
    localhost is also ::1, that attempt is refused: the echo server listens on 127.0.0.1);
    only the connection that won is the stream's socket, and nothing is left counted."""
    echo = peer("echo")
    t = tunnel(echo.port)
    (t.dir / "agent.toml").write_text((t.dir / "agent.toml").read_text().replace(
        f'upstream = "127.0.0.1:{echo.port}"', f'upstream = "localhost:{echo.port}"'))
    t.start_gateway()
    t.start_agent()
    for _ in range(3):
        echo_roundtrip(t.public_port, 1 << 20)
    deadline = time.monotonic() + 10
    while t.ctl_json("stats", agent=True)["streams_active"] != 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert t.ctl_json("stats", agent=True)["streams_active"] == 0
