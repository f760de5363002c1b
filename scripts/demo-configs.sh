#!/usr/bin/env bash
# Writes a gateway and an agent config for a loopback demo into DIR.
# Usage: scripts/demo-configs.sh DIR TUNNEL_PORT PUBLIC_PORT UPSTREAM_PORT HTTP_PORT
set -euo pipefail
dir=$1 tunnel=$2 public=$3 upstream=$4 http=$5
mkdir -p "$dir"
[ -f "$dir/agent.token" ] || openssl rand -hex 32 > "$dir/agent.token"
chmod 600 "$dir/agent.token"
cat > "$dir/gateway.toml" <<TOML
[gateway]
public_address = "127.0.0.1"
drain_timeout = "10s"

[control]
socket = "gateway.sock"

[tunnel]
listen = "127.0.0.1:$tunnel"
cert = "gateway.crt"
key = "gateway.key"

[[listener]]
name = "web"
protocol = "http"
listen = "127.0.0.1:$http"

[[agent]]
name = "demo"
token_file = "agent.token"
allow_ports = [$public]
allow_hosts = ["*.localhost"]
TOML
cat > "$dir/agent.toml" <<TOML
[agent]
name = "demo"
token_file = "agent.token"
gateways = ["localhost:$tunnel"]
ca = "ca.crt"
connections = 2

[control]
socket = "agent.sock"

[[service]]
name = "raw"
type = "tcp"
upstream = "127.0.0.1:$upstream"
remote_port = $public

[[service]]
name = "site"
type = "http"
upstream = "127.0.0.1:$upstream"
hosts = ["demo.localhost"]
TOML
