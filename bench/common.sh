# Sourced by bench/run.sh and bench/ab.sh (after scripts/background.sh, with $dir and
# $duration set): loopback ports, the upstreams both measure through (iperf3, and nginx
# serving a 1 KiB file), and the measures themselves.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "nothing on port $1" >&2; exit 1; }

# start_upstreams IPERF_PORT NGINX_PORT: iperf3 and a one-worker nginx with $dir/www/1k.bin.
start_upstreams() {
  iperf3 -s -B 127.0.0.1 -p "$1" >"$dir/iperf3.log" 2>&1 & pids+=($!)
  mkdir -p "$dir/www" "$dir/nginx"
  head -c 1024 /dev/urandom > "$dir/www/1k.bin"
  cat > "$dir/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 1000000;
  server { listen 127.0.0.1:$2; root $dir/www; }
}
CONF
  nginx -c "$dir/nginx/nginx.conf" -p "$dir/nginx" >/dev/null 2>&1 & pids+=($!)
}

gbits() { iperf3 -c 127.0.0.1 -p "$1" -t "$duration" -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
reqs() { wrk -t2 -c64 -d"${duration}s" "http://127.0.0.1:$1/1k.bin" | awk '/Requests\/sec/ {printf "%d", $2}'; }
