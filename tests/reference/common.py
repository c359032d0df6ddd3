"""What the aiortc reference servers share.

- `h264_only(sdp)`: keeps only H.264 (and its RTX) in an offer's video
  section. aiortc answers with the first codec of the offer that it
  supports and ignores setCodecPreferences when it answers, so Chromium's
  offer (VP8 first) would get VP8; the references need H.264, like rts.
- `CORS`: the headers that let a page on another origin (the rts web
  player's /play?url=...) use them.
"""
import re

CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
    "Access-Control-Expose-Headers": "Location, Link",
}


def h264_only(sdp):
    lines = sdp.split("\r\n")
    out, in_video, keep = [], False, set()
    rtpmap = {}
    for line in lines:
        m = re.match(r"a=rtpmap:(\d+) ([^/]+)/", line)
        if m:
            rtpmap[m.group(1)] = m.group(2).upper()
    apt = {}
    for line in lines:
        m = re.match(r"a=fmtp:(\d+) apt=(\d+)", line)
        if m:
            apt[m.group(1)] = m.group(2)
    h264 = {pt for pt, name in rtpmap.items() if name == "H264"}
    keep = h264 | {pt for pt, a in apt.items() if a in h264}
    for line in lines:
        if line.startswith("m="):
            in_video = line.startswith("m=video")
            if in_video:
                parts = line.split(" ")
                line = " ".join(parts[:3] + [p for p in parts[3:] if p in keep])
        elif in_video:
            m = re.match(r"a=(rtpmap|fmtp|rtcp-fb):(\d+)", line)
            if m and m.group(2) not in keep:
                continue
        out.append(line)
    return "\r\n".join(out)
