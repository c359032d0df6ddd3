#!/usr/bin/env bash
# Glass to glass from a WHIP publisher to a WHEP viewer in Chromium, rts
# beside aiortc (tests/reference/aiortc_whip.py: decodes and re-encodes),
# in the same run, RUNS alternating pairs (default 3). The publisher is
# rts-probe (openh264, 640x360 30 fps, video only, its capture time painted
# as a barcode); the viewer is headless Chromium (whep_barcode.js: display
# time minus capture time of every shown frame). Needs node, chromium,
# aiortc and a release build:
#
#   cargo build --release -p rts-server --bins --examples
#   bash tests/browser/whip-latency.sh [RUNS]
#
# Starts both servers on free loopback ports and prints one line per run.
set -euo pipefail
runs=${1:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
printf '[listen]\nrtmp = "127.0.0.1:19361"\nhttp = "127.0.0.1:18091"\nrtc = "127.0.0.1:18092"\n' > "$work/rts.toml"
"$root/target/release/rts-server" --no-auth --config "$work/rts.toml" > "$work/rts.log" 2>&1 &
python3 "$root/tests/reference/aiortc_whip.py" --http 127.0.0.1:18093 > "$work/aiortc.log" 2>&1 &
sleep 2
probe=$root/target/release/examples/rts-probe
show='import json,sys; d=json.load(sys.stdin); l=d.get("latencyMs") or {}; print("%-7s p50 %s ms, p95 %s ms, min %s, max %s (%s frames, %s unreadable)" % (sys.argv[1], l.get("p50"), l.get("p95"), l.get("min"), l.get("max"), d.get("samples"), d.get("unreadable")))'
measure() { # NAME WHIP WHEP
  "$probe" --publish "$2" --play "$3" --duration 18 > /dev/null 2> "$work/probe.err" &
  local p=$!
  sleep 3
  node "$root/tests/browser/whep_barcode.js" "$3" 10 | python3 -c "$show" "$1"
  wait "$p" || { echo "rts-probe failed:"; tail -3 "$work/probe.err"; }
}
for i in $(seq "$runs"); do
  echo "run $i"
  measure rts "http://127.0.0.1:18091/live/l$i/whip" "http://127.0.0.1:18091/live/l$i/whep"
  measure aiortc http://127.0.0.1:18093/whip http://127.0.0.1:18093/whep
done
