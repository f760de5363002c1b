#!/usr/bin/env bash
# Local demo: a sample web upstream, a gateway and an agent on loopback, with a throwaway CA.
# Usage: scripts/demo.sh start|stop DIR
set -euo pipefail
cmd=$1 dir=$2
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/.build/release/fastgw"
tunnel_port=7443 public_port=8080 upstream_port=8081 http_port=8088

stop() {
  for name in agent gateway upstream; do
    if [ -f "$dir/$name.pid" ]; then
      kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

case "$cmd" in
  stop) stop; echo "demo stopped"; exit 0 ;;
  start) ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac

stop
mkdir -p "$dir/www"
"$root/scripts/make-pki.sh" "$dir"
"$root/scripts/demo-configs.sh" "$dir" $tunnel_port $public_port $upstream_port $http_port
echo "<h1>Hello from a private upstream, through fastgw</h1>" > "$dir/www/index.html"

python3 -m http.server $upstream_port --bind 127.0.0.1 --directory "$dir/www" >"$dir/upstream.log" 2>&1 &
echo $! > "$dir/upstream.pid"
for _ in $(seq 1 100); do
  (exec 3<>/dev/tcp/127.0.0.1/$upstream_port) 2>/dev/null && break
  sleep 0.1
done
"$bin" gateway --config "$dir/gateway.toml" >"$dir/gateway.log" 2>&1 &
echo $! > "$dir/gateway.pid"
"$bin" agent --config "$dir/agent.toml" >"$dir/agent.log" 2>&1 &
echo $! > "$dir/agent.pid"

for _ in $(seq 1 100); do
  grep -q "services registered" "$dir/agent.log" 2>/dev/null && break
  sleep 0.1
done
if ! grep -q "services registered" "$dir/agent.log"; then
  echo "demo failed to start; logs:" >&2
  cat "$dir/gateway.log" "$dir/agent.log" >&2
  stop
  exit 1
fi

cat <<MSG

fastgw demo is running (logs and configs in $dir):
  upstream  127.0.0.1:$upstream_port   python http.server, the "private" service
  gateway   127.0.0.1:$tunnel_port   tunnel listener (TLS + HTTP/2), HTTP listener 127.0.0.1:$http_port,
                              public TCP port 127.0.0.1:$public_port
  agent     dials the gateway with its token, publishes the upstream twice: http service
            "site" for host demo.localhost, tcp service "raw" on port $public_port

Try it:
  curl http://demo.localhost:$http_port/        (HTTP, routed by host; curl resolves *.localhost to loopback)
  curl http://127.0.0.1:$public_port/           (the same upstream as a raw TCP port)

Manage it (fastgwctl talks to the control sockets):
  $root/.build/release/fastgwctl --socket $dir/gateway.sock agents
  $root/.build/release/fastgwctl --socket $dir/gateway.sock routes
  $root/.build/release/fastgwctl --socket $dir/agent.sock connections
  $root/.build/release/fastgwctl --socket $dir/gateway.sock stats

MSG
echo "First request, just made:"
curl -sS --max-time 5 -H "Host: demo.localhost" "http://127.0.0.1:$http_port/"
echo
echo "Stop it with: make demo-stop"
