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
and gstreamer1.0-plugins-good (rtph264pay, opus).
"""
import json
import sys
import time
import urllib.parse

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402

from whep_play import request, take_ref  # noqa: E402

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


class Publisher:
    def __init__(self, url, seconds):
        self.url, self.seconds = url, seconds
        self.t0 = time.monotonic()
        self.out = {"url": url, "ok": False}
        self.loop = GLib.MainLoop()
        self.pipe = Gst.parse_launch(PIPELINE)
        self.wb = self.pipe.get_by_name("wb")
        ice = self.wb.get_property("ice-agent")
        take_ref(ice)
        self.ice = ice
        ice.emit("add-local-ip-address", "127.0.0.1")
        self.wb.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.wb.connect("notify::ice-gathering-state", self.on_gathering)
        self.wb.connect("notify::connection-state", self.on_connection)
        bus = self.pipe.get_bus()
        bus.add_signal_watch()
        bus.connect("message::error", self.on_error)
        self.posted = False
        self.location = None

    def ms(self):
        return round((time.monotonic() - self.t0) * 1000)

    def fail(self, why):
        self.out.setdefault("error", why)
        self.loop.quit()

    def on_error(self, _bus, msg):
        err, dbg = msg.parse_error()
        self.fail(f"{err.message} ({dbg})")

    def on_negotiation_needed(self, wb):
        # Publish only: every transceiver sends.
        i = 0
        while (t := wb.emit("get-transceiver", i)) is not None:
            t.set_property("direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
            i += 1
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        wb.emit("create-offer", None, promise)

    def on_offer(self, promise, _):
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None and reply.has_field("offer") else None
        if offer is None:
            self.out.setdefault("offerErrors", []).append(reply.to_string() if reply else None)
            return
        self.wb.emit("set-local-description", offer, Gst.Promise.new())

    def on_gathering(self, wb, _pspec):
        done = wb.get_property("ice-gathering-state") == GstWebRTC.WebRTCICEGatheringState.COMPLETE
        if done and not self.posted:
            self.posted = True
            GLib.idle_add(self.post)

    def post(self):
        offer = self.wb.get_property("local-description").sdp.as_text()
        status, headers, body = request("POST", self.url, offer.encode(),
                                        {"Content-Type": "application/sdp"})
        self.out["postStatus"] = status
        if status != 201:
            self.fail(f"POST {status}: {body[:300]}")
            return False
        loc = headers.get("Location") or headers.get("location")
        self.location = urllib.parse.urljoin(self.url, loc) if loc else None
        _, sdp = GstSdp.SDPMessage.new_from_text(body)
        answer = GstWebRTC.WebRTCSessionDescription.new(GstWebRTC.WebRTCSDPType.ANSWER, sdp)
        self.wb.emit("set-remote-description", answer, Gst.Promise.new())
        return False

    def on_connection(self, wb, _pspec):
        state = wb.get_property("connection-state")
        if state == GstWebRTC.WebRTCPeerConnectionState.CONNECTED and "connectedMs" not in self.out:
            self.out["connectedMs"] = self.ms()
            GLib.timeout_add(int(self.seconds * 1000), self.finish)
        elif state == GstWebRTC.WebRTCPeerConnectionState.FAILED:
            self.fail("connection failed")

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
        if self.location:
            self.out["deleteStatus"] = request("DELETE", self.location)[0]
        self.out["ok"] = self.out["rtpSent"] > 0
        self.loop.quit()
        return False

    def run(self, limit):
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add(int(limit * 1000), lambda: self.fail(f"no result within {limit} s") or False)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return self.out


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
