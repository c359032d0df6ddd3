#!/usr/bin/python3
"""GStreamer webrtcbin as a WHIP publisher, for the interop tests.

    whip_publish.py URL [SECONDS]

Encodes videotestsrc with x264 (constrained baseline, no B-frames, a
keyframe every second, rtph264pay sending SPS/PPS with every IDR) and
audiotestsrc with opusenc, posts a non-trickle sendonly offer to URL,
applies the answer, publishes for SECONDS after ICE/DTLS connect, then
DELETEs the session. Prints one JSON line (RTP packets sent, as
webrtcbin's stats say: 1.22 does not name their kind); exit 0 when RTP
went out.

Needs what whep_play.py needs, plus gstreamer1.0-plugins-ugly (x264enc)
and gstreamer1.0-plugins-good (rtph264pay, opus); see webrtcbin.py.
"""
import json
import sys

from webrtcbin import Gst, GstWebRTC, Session

PIPELINE = (
    "webrtcbin name=wb bundle-policy=max-bundle "
    "videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=360,framerate=30/1 ! "
    "videoconvert ! x264enc tune=zerolatency speed-preset=ultrafast bframes=0 key-int-max=30 ! "
    "video/x-h264,profile=constrained-baseline ! rtph264pay config-interval=-1 aggregate-mode=zero-latency ! "
    "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000 ! wb. "
    "audiotestsrc is-live=true wave=sine ! audioconvert ! audioresample ! opusenc ! rtpopuspay ! "
    "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,"
    "encoding-params=(string)2 ! wb."
)


class Publisher(Session):
    def __init__(self, url, seconds):
        pipe = Gst.parse_launch(PIPELINE)
        super().__init__(url, seconds, pipe, pipe.get_by_name("wb"))

    def before_offer(self, wb):
        # Publish only: every transceiver sends.
        i = 0
        while (t := wb.emit("get-transceiver", i)) is not None:
            t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            i += 1

    def sent(self):
        """RTP packets sent, from webrtcbin's outbound-rtp stats."""
        promise = Gst.Promise.new()
        self.wb.emit("get-stats", None, promise)
        promise.wait()
        reply = promise.get_reply()
        sent = [0]

        def each(_field, value, _):
            if isinstance(value, Gst.Structure) and value.has_field("type"):
                kind = value.get_value("type")
                if getattr(kind, "value_nick", "") == "outbound-rtp" and value.has_field("packets-sent"):
                    sent[0] += value.get_value("packets-sent")
            return True

        if reply is not None:
            reply.foreach(each, None)
        return sent[0]

    def finish(self):
        self.out["rtpSent"] = self.sent()
        self.out["ok"] = self.out["rtpSent"] > 0
        self.done()
        return False


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    Gst.init(None)
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 8.0
    out = Publisher(sys.argv[1], seconds).run(seconds + 20)
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
