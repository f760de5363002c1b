#!/usr/bin/env bash
# A/B of two fastgw builds on the data path, interleaved so that drift of the machine (other
# load, turbo, caches) falls on both alike: ROUNDS rounds, each starting a fresh gateway and
# agent of build A, then of build B, and measuring through them a TCP service (wrk, 64
# connections, 1 KiB from nginx), the HTTP entry (same, by host) and bulk (iperf3). The same
# nginx and iperf3 serve both. Prints every round and the mean change B vs A.
# Usage: bench/ab.sh A/fastgw B/fastgw   (release builds; BENCH_SECONDS, ROUNDS optional)
# `make bench-ab BASE=<commit>` builds BASE in a scratch worktree and runs this against HEAD.
set -euo pipefail
a=$(realpath "${1:?usage: ab.sh OLD_FASTGW NEW_FASTGW}")
b=$(realpath "${2:?usage: ab.sh OLD_FASTGW NEW_FASTGW}")
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/fastgw-ab.XXXXXX)
duration=${BENCH_SECONDS:-6}
rounds=${ROUNDS:-3}
. "$root/scripts/background.sh"

. "$root/bench/common.sh"

iperf_port=$(port) nginx_port=$(port) tunnel_port=$(port) fg_tcp=$(port) fg_web=$(port) fg_iperf=$(port)
start_upstreams "$iperf_port" "$nginx_port"
"$root/scripts/make-pki.sh" "$dir"
openssl rand -hex 32 > "$dir/token"
cat > "$dir/gateway.toml" <<TOML
[control]
socket = "gateway.sock"
[tunnel]
listen = "127.0.0.1:$tunnel_port"
cert = "gateway.crt"
key = "gateway.key"
[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.1:$fg_web"
[[agent]]
name = "bench"
token_file = "token"
allow_ports = [$fg_tcp, $fg_iperf]
allow_hosts = ["127.0.0.1"]
TOML
cat > "$dir/agent.toml" <<TOML
[agent]
name = "bench"
token_file = "token"
gateways = ["localhost:$tunnel_port"]
ca = "ca.crt"
[control]
socket = "agent.sock"
[[service]]
name = "web"
upstream = "127.0.0.1:$nginx_port"
remote_port = $fg_tcp
[[service]]
name = "iperf"
upstream = "127.0.0.1:$iperf_port"
remote_port = $fg_iperf
[[service]]
name = "site"
type = "http"
upstream = "127.0.0.1:$nginx_port"
hosts = ["127.0.0.1"]
TOML
wait_port "$nginx_port"; wait_port "$iperf_port"


# One round with one build: fresh daemons, three measures, daemons stopped.
measure() {
  local bin=$1 gw ag
  (cd "$dir" && exec "$bin" gateway -c gateway.toml --log-level warning >>"$dir/gateway.log" 2>&1) & gw=$!
  wait_port "$tunnel_port"
  (cd "$dir" && exec "$bin" agent -c agent.toml --log-level warning >>"$dir/agent.log" 2>&1) & ag=$!
  wait_port "$fg_tcp"; wait_port "$fg_iperf"; wait_port "$fg_web"; sleep 1
  echo "$(reqs "$fg_tcp") $(reqs "$fg_web") $(gbits "$fg_iperf")"
  kill "$ag" "$gw"; wait "$ag" "$gw" 2>/dev/null || true
}

results=()
printf '%-6s %-2s %12s %12s %10s\n' round "" "tcp req/s" "http req/s" "bulk Gb/s"
for r in $(seq 1 "$rounds"); do
  for side in A B; do
    bin=$a; [ "$side" = B ] && bin=$b
    line=$(measure "$bin")
    results+=("$side $line")
    printf '%-6s %-2s %12s %12s %10s\n' "$r" "$side" $line
  done
done
printf '%s\n' "${results[@]}" | python3 -c '
import sys
rows = [l.split() for l in sys.stdin if l.strip()]
def mean(side, i): v = [float(r[i]) for r in rows if r[0] == side]; return sum(v) / len(v)
for i, name in ((1, "tcp req/s"), (2, "http req/s"), (3, "bulk Gb/s")):
    a, b = mean("A", i), mean("B", i)
    print(f"{name:>12}: A {a:,.2f}  B {b:,.2f}  change {100 * (b - a) / a:+.1f} %")
'
