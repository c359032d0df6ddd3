#!/usr/bin/env bash
# First frame in Chromium for a viewer who joins a 10 s GOP with B-frames
# after the last viewer left, with and without the warm branch
# (docs/decisions/transcode-linger.md). Needs ffmpeg (libx264), node and
# chromium, and a release build:
#
#   cargo build --release -p rts-server --bin rts-server
#   bash tests/browser/warm-join.sh 1280x720 2000 120 [true]
#                              # SIZE KBPS LINGER_S [WARM_ON_PUBLISH]
#
# Starts the server on the default ports (--no-auth), publishes with
# ffmpeg, plays twice with whep_play.js and prints both first frames, the
# server's CPU with no viewer between them, and the branch's log lines.
set -euo pipefail
size=${1:?SIZE}; kbps=${2:?KBPS}; linger=${3:?LINGER_S}; on_publish=${4:-false}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT
printf '[webrtc]\ntranscode_linger_s = %s\ntranscode_warm_on_publish = %s\n' \
  "$linger" "$on_publish" > "$work/rts.toml"
"$root/target/release/rts-server" --no-auth --config "$work/rts.toml" > "$work/server.log" 2>&1 &
srv=$!
sleep 1
name=warm$$
ffmpeg -hide_banner -loglevel error -re -f lavfi -i "testsrc2=size=$size:rate=30" \
  -f lavfi -i sine=frequency=440:sample_rate=44100 \
  -c:v libx264 -preset veryfast -b:v "${kbps}k" -g 300 -keyint_min 300 -sc_threshold 0 \
  -c:a aac -f flv "rtmp://127.0.0.1:1935/live/$name" &
ff=$!
sleep 2
url=http://127.0.0.1:8080/live/$name/whep
show='import json,sys; d=json.load(sys.stdin); print(sys.argv[1], "first frame", round(d["firstFrameMs"]), "ms, ICE+DTLS", round(d["connectedMs"]), "ms")'
node "$root/tests/browser/whep_play.js" "$url" 2 | python3 -c "$show" "viewer 1:"
ticks() { awk '{print $14 + $15}' "/proc/$srv/stat"; }
c1=$(ticks); sleep 3; c2=$(ticks)
echo "server CPU with no viewer: $(( c2 - c1 )) ticks in 3 s ($(getconf CLK_TCK) ticks = 1 core-second)"
node "$root/tests/browser/whep_play.js" "$url" 2 | python3 -c "$show" "viewer 2:"
kill "$ff"; wait "$ff" 2>/dev/null || true
grep -E "joined at|resumed|warm from" "$work/server.log" | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-160
