"""The [metrics] HTTP listener (issue #18): /metrics in the Prometheus exposition with the
per-service latency histograms, scraped by a real Prometheus and checked by promtool;
/healthz; /readyz for balancers (503 while a gateway drains, while an agent has no tunnel);
the allow list, and what a hostile client can do to it (slow heads, many connections)."""
import json
import re
import socket
import subprocess
import time
import urllib.parse
import urllib.request

from conftest import BIN, ROOT, Process, free_port
from test_http import add_http, service


def get(port, path, method="GET"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def contrib_expressions():
    """Every PromQL expression of contrib/grafana/fastgw.json (its variables filled in) and
    contrib/prometheus/alerts.yml."""
    dashboard = json.loads((ROOT / "contrib" / "grafana" / "fastgw.json").read_text())
    exprs = [t["expr"].replace("$__rate_interval", "1m").replace("$job", "fastgw").replace("$instance", ".*")
             for p in dashboard["panels"] for t in p["targets"]]
    rules = subprocess.run(["promtool", "check", "rules", "--lint=none", ROOT / "contrib" / "prometheus" / "alerts.yml"],
                           capture_output=True, text=True)
    assert rules.returncode == 0, rules.stdout + rules.stderr
    tests = subprocess.run(["promtool", "test", "rules", "alerts.test.yml"], cwd=ROOT / "contrib" / "prometheus",
                           capture_output=True, text=True)
    assert tests.returncode == 0, tests.stdout + tests.stderr
    text = (ROOT / "contrib" / "prometheus" / "alerts.yml").read_text()
    exprs += [m.strip() for m in re.findall(r"expr: \|\n((?:          .*\n)+)", text)]
    exprs += re.findall(r"expr: (?!\|)(.*)", text)
    return exprs


def with_metrics(path, port, allow=None):
    extra = f"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n" + (f"allow = {json.dumps(allow)}\n" if allow else "")
    text = path.read_text()
    # Before the first array table, so it stays a top-level table.
    i = text.find("[[")
    path.write_text(text[:i] + extra + "\n" + text[i:] if i >= 0 else text + extra)


def test_metrics_health_and_readiness_of_a_gateway_and_an_agent(tunnel, peer, tmp_path):
    t = tunnel(peer("echo").port)
    up = peer("httpapp", "one")
    gw_metrics, agent_metrics = free_port(), free_port()
    with_metrics(t.dir / "gateway.toml", gw_metrics)
    with_metrics(t.dir / "agent.toml", agent_metrics)
    http_port = add_http(t, service("web", up.port, ["app.test"]), ["app.test"])
    r = subprocess.run([BIN, "check", "-c", t.dir / "gateway.toml"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # The agent first, with no gateway: alive, not ready.
    t.start_agent(wait=False)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            status, _, body = get(agent_metrics, "/readyz")
            break
        except OSError:
            time.sleep(0.1)
    assert status == 503 and "no tunnel connection" in body, body
    assert get(agent_metrics, "/healthz")[:1] == (200,)
    t.start_gateway()
    t.wait_registered()
    assert get(agent_metrics, "/readyz")[0] == 200
    status, _, body = get(gw_metrics, "/readyz")
    assert (status, body) == (200, "ok\n")
    assert get(gw_metrics, "/healthz")[2] == "ok\n"

    # Traffic, then the histograms per service.
    for _ in range(20):
        out = subprocess.run(["curl", "-sS", "-H", "Host: app.test", f"http://127.0.0.1:{http_port}/hello"], capture_output=True)
        assert out.returncode == 0
    with socket.create_connection(("127.0.0.1", t.public_port)) as s:
        s.sendall(b"x\n")
        assert s.recv(8) == b"x\n"
    status, headers, text = get(gw_metrics, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert 'fastgw_service_first_byte_seconds_count{service="web"} 20' in text
    assert 'fastgw_service_stream_open_seconds_count{service="web"} 20' in text
    assert 'fastgw_service_stream_open_seconds_count{service="svc"} 1' in text
    assert 'fastgw_service_stream_open_seconds_bucket{service="web",le="+Inf"} 20' in text
    assert "fastgw_agents_connected 1" in text
    promtool = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert promtool.returncode == 0, promtool.stdout + promtool.stderr
    assert "fastgw_" in get(agent_metrics, "/metrics")[2]
    # HEAD, unknown paths and methods.
    assert get(gw_metrics, "/metrics", method="HEAD")[2] == ""
    assert get(gw_metrics, "/")[0] == 404
    assert get(gw_metrics, "/metrics", method="POST")[0] == 405

    # A real Prometheus scrapes both.
    prom_port = free_port()
    (tmp_path / "prometheus.yml").write_text(f"""
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: fastgw
    static_configs:
      - targets: ["127.0.0.1:{gw_metrics}", "127.0.0.1:{agent_metrics}"]
""")
    prom = Process(["prometheus", f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}"], tmp_path / "prometheus.log")
    try:
        deadline = time.monotonic() + 30
        result = []
        while time.monotonic() < deadline:
            try:
                q = get(prom_port, "/api/v1/query?query=sum(fastgw_service_first_byte_seconds_count)")[2]
                result = json.loads(q)["data"]["result"]
                up = json.loads(get(prom_port, "/api/v1/query?query=up")[2])["data"]["result"]
                if result and len(up) == 2 and all(u["value"][1] == "1" for u in up):
                    break
            except (OSError, ValueError, KeyError):
                pass
            time.sleep(0.5)
        assert result and result[0]["value"][1] == "20", (result, prom.text()[-2000:])
        # The shipped dashboard's and alerts' expressions are valid PromQL over metrics the
        # daemons really export.
        exported = set(re.findall(r"^# TYPE (fastgw_\w+)", text + get(agent_metrics, "/metrics")[2], re.M))
        for expr in contrib_expressions():
            names = {n.removesuffix("_bucket") for n in re.findall(r"fastgw_\w+", expr)}
            assert names <= exported, (expr, names - exported)
            answer = json.loads(get(prom_port, "/api/v1/query?query=" + urllib.parse.quote(expr))[2])
            assert answer["status"] == "success", (expr, answer)
    finally:
        prom.kill()

    # A draining gateway says so to balancers before it stops (a slow request keeps it draining).
    slow = subprocess.Popen(["curl", "-sS", "-H", "Host: app.test", f"http://127.0.0.1:{http_port}/sleep/4"], stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    drain = subprocess.Popen([*t.ctl_args(), "drain", "20"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        answer = None
        while time.monotonic() < deadline:
            try:
                answer = get(gw_metrics, "/readyz")
                if answer[0] == 503:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert answer and answer[0] == 503 and "draining" in answer[2], answer
    finally:
        drain.wait(30)
        slow.wait(30)


def test_metrics_listener_refuses_what_it_should(tunnel, peer):
    t = tunnel(peer("echo").port)
    port = free_port()
    with_metrics(t.dir / "gateway.toml", port, allow=["10.0.0.0/8"])
    t.start_gateway()
    # Outside allow: closed at accept.
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    (t.dir / "gateway.toml").write_text((t.dir / "gateway.toml").read_text().replace('allow = ["10.0.0.0/8"]', 'allow = ["127.0.0.0/8"]'))
    t.gateway.kill()
    t.gateway.proc.wait(15)
    t.start_gateway().wait_for("gateway ready", count=2)  # the log file is appended to
    assert get(port, "/healthz")[0] == 200
    # Idle connections: at most 32 held; a slow head is closed after 5 s.
    idle = []
    for _ in range(40):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /met")
        idle.append(s)
    time.sleep(0.5)
    closed_early = 0
    for s in idle:
        s.settimeout(0.2)
        try:
            if s.recv(10) == b"":
                closed_early += 1
        except socket.timeout:
            pass
        except ConnectionResetError:
            closed_early += 1
    assert closed_early >= 8, closed_early
    begun = time.monotonic()
    idle[0].settimeout(10)
    try:
        assert idle[0].recv(10) == b""
    except ConnectionResetError:
        pass
    assert time.monotonic() - begun < 6
    for s in idle:
        s.close()
    time.sleep(5.5)
    assert get(port, "/healthz")[0] == 200
