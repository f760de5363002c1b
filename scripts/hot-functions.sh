#!/usr/bin/env bash
# Regenerates scripts/link/hot-functions.txt, the lld symbol-ordering file of release builds
# (docs/benchmarks.md, "Memory"): the functions a gateway and an agent execute from start
# through a few HTTP, HTTPS/h2 and TCP requests to a graceful stop, recorded with callgrind,
# so that the release link can put them next to each other. Needs valgrind. Run it after
# changes that move much code; a stale list still links, it only keeps less code together.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/fastgw-hot.XXXXXX)
. "$root/scripts/background.sh"
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install -y valgrind" >&2; exit 1; }

cd "$root"
make -s release
swift build -c release --static-swift-stdlib -Xswiftc -Xfrontend -Xswiftc -function-sections \
  -Xlinker "-Map=$dir/fastgw.map" --product fastgw
# valgrind cannot read lld's debug info; the symbol table is all it needs.
cp .build/release/fastgw "$dir/fastgw"
strip --strip-debug "$dir/fastgw"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
tunnel=$(port) public=$(port) upstream=$(port) http=$(port) https=$(port)
"$root/scripts/make-pki.sh" "$dir" >/dev/null
"$root/scripts/demo-configs.sh" "$dir" "$tunnel" "$public" "$upstream" "$http"
cat >> "$dir/gateway.toml" <<TOML
[[listener]]
name = "tls"
protocol = "https"
listen = "127.0.0.1:$https"
cert = "gateway.crt"
key = "gateway.key"
TOML
sed -i 's/^allow_hosts = .*/allow_hosts = ["*.localhost", "localhost"]/' "$dir/gateway.toml"
sed -i 's/^hosts = .*/hosts = ["demo.localhost", "localhost"]/' "$dir/agent.toml"
mkdir -p "$dir/www" && echo hello > "$dir/www/index.html"
python3 -m http.server "$upstream" --bind 127.0.0.1 --directory "$dir/www" >/dev/null 2>&1 & pids+=($!)

cd "$dir"
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$dir/cg.gateway" \
  ./fastgw gateway -c gateway.toml >gateway.log 2>&1 & gw=$!; pids+=($gw)
for _ in $(seq 1 200); do (exec 3<>/dev/tcp/127.0.0.1/$tunnel) 2>/dev/null && break; sleep 0.1; done
valgrind --tool=callgrind --demangle=no --callgrind-out-file="$dir/cg.agent" \
  ./fastgw agent -c agent.toml >agent.log 2>&1 & ag=$!; pids+=($ag)
for _ in $(seq 1 300); do [ "$(grep -c 'services registered' agent.log)" -ge 2 ] && break; sleep 0.1; done
sleep 2
for _ in 1 2 3; do
  curl -sS -o /dev/null --max-time 20 "http://demo.localhost:$http/"
  curl -sS -o /dev/null --max-time 20 --http2 --cacert ca.crt "https://localhost:$https/"
  curl -sS -o /dev/null --max-time 20 "http://127.0.0.1:$public/"
done
"$root/.build/release/fastgwctl" --socket gateway.sock stats >/dev/null
sleep 3
kill -TERM "$gw" "$ag"
wait "$gw" "$ag" 2>/dev/null || true

nm -S -t d --defined-only fastgw | awk 'NF==4 {print $4, $1, $2}' > symbols.txt
python3 "$root/scripts/hot-functions.py" fastgw.map symbols.txt cg.gateway cg.agent > "$root/scripts/link/hot-functions.txt"
wc -l "$root/scripts/link/hot-functions.txt"
