#!/usr/bin/env bash
# fastgw benchmark: bulk throughput (iperf3) and HTTP req/s (wrk, 64 connections, nginx
# serving a 1 KiB file) direct, through `ssh -R`, and through a fastgw TCP service; then HTTP
# req/s through a fastgw http listener (gateway -> tunnel -> agent -> nginx) against one plain
# nginx reverse-proxy hop, and HTTPS/h2 req/s (h2load) through a fastgw https listener against
# the same nginx hop speaking TLS + HTTP/2; all on loopback in the same run. Two references
# show what the shape of the path allows on this machine: iperf3 through two plain relays
# (socat, no encryption: the path fastgw's bytes take, minus TLS and HTTP/2), and wrk through
# two nginx hops with TLS between them (gateway and agent's shape, done by nginx). Prints a
# table with ratios and the daemons' idle RSS, and bulk through the WebSocket carrier.
# Run with `make bench` (release build). Not part of the tests.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.build/release/fastgw"
dir=$(mktemp -d /tmp/fastgw-bench.XXXXXX)
duration=${BENCH_SECONDS:-8}
. "$root/scripts/background.sh"

. "$root/bench/common.sh"
rss() { awk '/VmRSS/ {print $2}' /proc/$1/status; }  # KiB

proxy_tls=$(port) fg_tls=$(port)
iperf_port=$(port) nginx_port=$(port) sshd_port=$(port) ssh_iperf=$(port) ssh_http=$(port)
tunnel_port=$(port) fg_iperf=$(port) fg_http=$(port) fg_web=$(port) proxy_port=$(port)
relay1=$(port) relay2=$(port) hop_front=$(port) hop_back=$(port) fg_ws_iperf=$(port)

# Upstreams: iperf3 and nginx.
start_upstreams "$iperf_port" "$nginx_port"

# Certificates for the tunnel, the https listener and the nginx TLS hop.
"$root/scripts/make-pki.sh" "$dir"

# The peer for the HTTP entry: one nginx reverse-proxy hop in front of the same nginx, with
# upstream keep-alive and one worker per core (fastgw runs one event loop per core).
mkdir -p "$dir/proxy"
cat > "$dir/proxy/nginx.conf" <<CONF
worker_processes auto;
daemon off;
pid $dir/proxy/nginx.pid;
error_log $dir/proxy/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  upstream app { server 127.0.0.1:$nginx_port; keepalive 64; }
  server {
    listen 127.0.0.1:$proxy_port;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  # Two hops with TLS between them: the shape of gateway -> tunnel -> agent, done by nginx.
  upstream back { server 127.0.0.1:$hop_back; keepalive 64; }
  server {
    listen 127.0.0.1:$hop_front;
    location / { proxy_pass https://back; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_ssl_session_reuse on; }
  }
  server {
    listen 127.0.0.1:$hop_back ssl;
    ssl_certificate $dir/gateway.crt;
    ssl_certificate_key $dir/gateway.key;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
  server {
    listen 127.0.0.1:$proxy_tls ssl http2;
    ssl_certificate $dir/gateway.crt;
    ssl_certificate_key $dir/gateway.key;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
CONF
nginx -c "$dir/proxy/nginx.conf" -p "$dir/proxy" >/dev/null 2>&1 & pids+=($!)

# Two plain relays in a row in front of iperf3 (no encryption, 256 KiB buffers like fastgw's reads).
socat -b 262144 "TCP-LISTEN:$relay1,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$relay2" 2>/dev/null & pids+=($!)
socat -b 262144 "TCP-LISTEN:$relay2,bind=127.0.0.1,reuseaddr,fork" "TCP:127.0.0.1:$iperf_port" 2>/dev/null & pids+=($!)

# ssh -R: a private sshd on loopback, a key for root, two remote forwards.
mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$dir/id"
cp "$dir/id.pub" "$dir/authorized_keys"
cat > "$dir/sshd_config" <<CONF
Port $sshd_port
ListenAddress 127.0.0.1
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
UsePAM no
AllowTcpForwarding yes
CONF
/usr/sbin/sshd -D -f "$dir/sshd_config" & pids+=($!)
wait_port "$sshd_port"
ssh -N -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ExitOnForwardFailure=yes \
  -o LogLevel=ERROR -i "$dir/id" -p "$sshd_port" \
  -R "127.0.0.1:$ssh_iperf:127.0.0.1:$iperf_port" -R "127.0.0.1:$ssh_http:127.0.0.1:$nginx_port" root@127.0.0.1 & pids+=($!)

# fastgw: gateway + agent publishing both upstreams.
openssl rand -hex 32 > "$dir/token"
openssl rand -hex 32 > "$dir/token-ws"
cat > "$dir/gateway.toml" <<TOML
[gateway]
public_address = "127.0.0.1"
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
[[listener]]
name = "tls"
protocol = "https"
listen = "127.0.0.1:$fg_tls"
cert = "gateway.crt"
key = "gateway.key"
[[agent]]
name = "bench"
token_file = "token"
allow_ports = [$fg_iperf, $fg_http]
allow_hosts = ["127.0.0.1", "localhost"]
[[agent]]
name = "bench-ws"
token_file = "token-ws"
allow_ports = [$fg_ws_iperf]
TOML
# A second agent on the WebSocket carrier, for its bulk figure.
cat > "$dir/agent-ws.toml" <<TOML
[agent]
name = "bench-ws"
token_file = "token-ws"
gateways = ["localhost:$tunnel_port"]
ca = "ca.crt"
transport = "websocket"
[control]
socket = "agent-ws.sock"
[[service]]
name = "iperf-ws"
upstream = "127.0.0.1:$iperf_port"
remote_port = $fg_ws_iperf
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
name = "iperf"
upstream = "127.0.0.1:$iperf_port"
remote_port = $fg_iperf
[[service]]
name = "web"
upstream = "127.0.0.1:$nginx_port"
remote_port = $fg_http
[[service]]
name = "site"
type = "http"
upstream = "127.0.0.1:$nginx_port"
hosts = ["127.0.0.1", "localhost"]
TOML
"$bin" gateway -c "$dir/gateway.toml" --log-level warning >"$dir/gateway.log" 2>&1 & gw=$!; pids+=($gw)
wait_port "$tunnel_port"
"$bin" agent -c "$dir/agent.toml" >"$dir/agent.log" 2>&1 & ag=$!; pids+=($ag)
"$bin" agent -c "$dir/agent-ws.toml" >"$dir/agent-ws.log" 2>&1 & pids+=($!)
for log in agent.log agent-ws.log; do
  for _ in $(seq 1 100); do [ "$(grep -c 'services registered' "$dir/$log")" -ge 2 ] && break; sleep 0.1; done
done
wait_port "$nginx_port"; wait_port "$iperf_port"; wait_port "$ssh_iperf"; wait_port "$fg_http"; wait_port "$proxy_port"; wait_port "$fg_web"; wait_port "$proxy_tls"; wait_port "$fg_tls"
sleep 1
idle_gw=$(rss $gw) idle_ag=$(rss $ag)

h2reqs() { h2load -c 16 -m 32 -D "$duration" "https://localhost:$1/1k.bin" | awk '/^finished in/ {gsub(",", "", $4); printf "%d", $4}'; }

echo "measuring ${duration}s each ..." >&2
bulk_direct=$(gbits "$iperf_port"); bulk_ssh=$(gbits "$ssh_iperf"); bulk_fg=$(gbits "$fg_iperf"); bulk_relays=$(gbits "$relay1"); bulk_ws=$(gbits "$fg_ws_iperf")
peak_gw=$(rss $gw) peak_ag=$(rss $ag)
http_direct=$(reqs "$nginx_port"); http_ssh=$(reqs "$ssh_http"); http_fg=$(reqs "$fg_http")
web_proxy=$(reqs "$proxy_port"); web_fg=$(reqs "$fg_web"); web_two_hops=$(reqs "$hop_front")
h2_proxy=$(h2reqs "$proxy_tls"); h2_fg=$(h2reqs "$fg_tls")
peak_gw=$(( $(rss $gw) > peak_gw ? $(rss $gw) : peak_gw )); peak_ag=$(( $(rss $ag) > peak_ag ? $(rss $ag) : peak_ag ))

python3 - "$bulk_direct" "$bulk_ssh" "$bulk_fg" "$http_direct" "$http_ssh" "$http_fg" "$idle_gw" "$idle_ag" "$peak_gw" "$peak_ag" "$web_proxy" "$web_fg" "$h2_proxy" "$h2_fg" "$bulk_relays" "$web_two_hops" "$bulk_ws" <<'PY'
import sys
bd, bs, bf, hd, hs, hf = map(float, sys.argv[1:7])
ig, ia, pg, pa = (int(v) / 1024 for v in sys.argv[7:11])
wp, wf, h2p, h2f, br, w2, bw = map(float, sys.argv[11:18])
print()
print(f"{'':28}{'direct':>12}{'ssh -R':>12}{'fastgw':>12}{'fastgw/ssh':>12}{'fastgw/direct':>15}")
print(f"{'iperf3 bulk (Gbit/s)':28}{bd:12.2f}{bs:12.2f}{bf:12.2f}{bf/bs:12.2f}{bf/bd:15.2f}")
print(f"{'wrk 1 KiB, 64 conn (req/s)':28}{hd:12.0f}{hs:12.0f}{hf:12.0f}{hf/hs:12.2f}{hf/hd:15.2f}")
print()
print(f"{'HTTP entry, wrk 1 KiB, 64 conn':32}{'nginx proxy':>12}{'fastgw http':>12}{'fastgw/nginx':>14}")
print(f"{'(req/s)':32}{wp:12.0f}{wf:12.0f}{wf/wp:14.2f}")
print(f"{'HTTPS/h2, h2load 16 conn x 32':32}{h2p:12.0f}{h2f:12.0f}{h2f/h2p:14.2f}")
print()
print(f"iperf3 through fastgw on the WebSocket carrier: {bw:.2f} Gbit/s = {bw/bs:.2f}x ssh -R, {bw/bf:.2f}x the direct carrier")
print()
print("references (what the shape of the path allows here):")
print(f"  iperf3 through two plain relays (socat, no TLS): {br:.2f} Gbit/s = {br/bs:.2f}x ssh -R")
print(f"  wrk through two nginx hops with TLS between:     {w2:.0f} req/s = {w2/wp:.2f}x one nginx hop")
print()
print(f"RSS gateway: idle {ig:.1f} MiB, peak {pg:.1f} MiB; agent: idle {ia:.1f} MiB, peak {pa:.1f} MiB")
print("targets: issue #2 bulk >= 2.0x ssh -R, req/s >= 2.0x ssh -R, idle RSS <= 16 MiB per daemon;")
print("         issue #5 HTTP entry req/s >= 1.0x one nginx reverse-proxy hop")
PY

# Issue #14: what an open connection costs across gateway + agent, and whether the heap is
# handed back once they close (its own gateway and agent, on a machine the runs above left).
echo
FASTGW_BIN="$bin" python3 "$root/bench/open_connections.py" 2000
