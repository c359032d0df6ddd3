#!/usr/bin/python3
"""GStreamer webrtcbin as a WHEP player, for the interop tests.

    whep_play.py URL [SECONDS]

Posts a non-trickle offer (H.264 and Opus, recvonly) to URL, applies the
answer, decodes the video (rtph264depay ! avdec_h264) and counts frames and
Opus RTP packets for SECONDS after ICE/DTLS connect, then DELETEs the
session. Prints one JSON line; exit 0 when video frames were decoded.

Needs Debian's python3-gi, gir1.2-gst-plugins-bad-1.0, gstreamer1.0-nice and
gstreamer1.0-libav (.ci/install-deps); see webrtcbin.py.
"""
import json
import sys

from webrtcbin import Gst, GstWebRTC, Session


class Player(Session):
    def __init__(self, url, seconds):
        pipe = Gst.Pipeline.new("player")
        wb = Gst.ElementFactory.make("webrtcbin", "wb")
        wb.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        pipe.add(wb)
        super().__init__(url, seconds, pipe, wb)
        self.out.update({"framesDecoded": 0, "audioRtpPackets": 0})
        for caps in (
            "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
            "packetization-mode=(string)1,profile-level-id=(string)42e01f",
            "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,"
            "encoding-params=(string)2",
        ):
            wb.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                    Gst.Caps.from_string(caps))
        wb.connect("pad-added", self.on_pad)

    def on_pad(self, _wb, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        caps = pad.get_current_caps() or pad.query_caps(None)
        media = caps.get_structure(0).get_string("media")
        if media == "video":
            chain = "queue ! rtph264depay ! h264parse ! avdec_h264 ! fakesink name=v sync=false signal-handoffs=true"
            counter = "framesDecoded"
        else:
            chain = "queue ! fakesink name=v sync=false signal-handoffs=true"
            counter = "audioRtpPackets"
        branch = Gst.parse_bin_from_description(chain, True)
        self.pipe.add(branch)
        branch.get_by_name("v").connect("handoff", lambda *_: self.count(counter))
        branch.sync_state_with_parent()
        if pad.link(branch.get_static_pad("sink")) != Gst.PadLinkReturn.OK:
            self.fail(f"cannot link the {media} pad")

    def count(self, key):
        self.out[key] += 1
        if key == "framesDecoded" and self.out[key] == 1:
            self.out["firstFrameMs"] = self.ms()

    def finish(self):
        self.out["ok"] = self.out["framesDecoded"] > 0
        self.done()
        return False


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    Gst.init(None)
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    out = Player(sys.argv[1], seconds).run(seconds + 20)
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
