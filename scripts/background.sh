# Sourced by scripts that start processes in the background: add each one's pid to `pids`
# (`... & pids+=($!)`); when the script exits they are stopped and the scratch directory
# `$dir` (set before sourcing) is removed.
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
