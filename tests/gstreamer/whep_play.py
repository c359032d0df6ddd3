#!/usr/bin/python3
"""GStreamer webrtcbin as a WHEP player, for the interop tests.

    whep_play.py URL [SECONDS]

Posts a non-trickle offer (H.264 and Opus, recvonly) to URL, applies the
answer, decodes the video (rtph264depay ! avdec_h264) and counts frames and
Opus RTP packets for SECONDS after ICE/DTLS connect, then DELETEs the
session. Prints one JSON line; exit 0 when video frames were decoded.

Needs Debian's python3-gi, gir1.2-gst-plugins-bad-1.0, gstreamer1.0-nice and
gstreamer1.0-libav (.ci/install-deps). Loopback only: libnice is told to use
127.0.0.1 and nothing else.
"""
import ctypes
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
from gi.repository import GLib, Gst, GstSdp, GstWebRTC  # noqa: E402


def take_ref(obj):
    """GStreamer 1.22: the Python binding of webrtcbin's "ice-agent"
    property returns a reference the getter never took; without one more
    ref the ICE object is freed under webrtcbin."""
    lib = ctypes.CDLL("libgobject-2.0.so.0")
    lib.g_object_ref.argtypes = [ctypes.c_void_p]
    lib.g_object_ref.restype = ctypes.c_void_p
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype, get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
    lib.g_object_ref(get(obj.__gpointer__, None))


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


class Player:
    def __init__(self, url, seconds):
        self.url, self.seconds = url, seconds
        self.t0 = time.monotonic()
        self.out = {"url": url, "ok": False, "framesDecoded": 0, "audioRtpPackets": 0}
        self.loop = GLib.MainLoop()
        self.pipe = Gst.Pipeline.new("player")
        self.wb = Gst.ElementFactory.make("webrtcbin", "wb")
        self.wb.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipe.add(self.wb)
        ice = self.wb.get_property("ice-agent")
        take_ref(ice)
        self.ice = ice
        ice.emit("add-local-ip-address", "127.0.0.1")
        for caps in (
            "application/x-rtp,media=video,encoding-name=H264,payload=96,clock-rate=90000,"
            "packetization-mode=(string)1,profile-level-id=(string)42e01f",
            "application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000,"
            "encoding-params=(string)2",
        ):
            self.wb.emit("add-transceiver", GstWebRTC.WebRTCRTPTransceiverDirection.RECVONLY,
                         Gst.Caps.from_string(caps))
        self.wb.connect("on-negotiation-needed", self.on_negotiation_needed)
        self.wb.connect("notify::ice-gathering-state", self.on_gathering)
        self.wb.connect("notify::connection-state", self.on_connection)
        self.wb.connect("pad-added", self.on_pad)
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
        promise = Gst.Promise.new_with_change_func(self.on_offer, None)
        wb.emit("create-offer", None, promise)

    def on_offer(self, promise, _):
        reply = promise.get_reply()
        offer = reply.get_value("offer") if reply is not None and reply.has_field("offer") else None
        if offer is None:
            # webrtcbin 1.22 can answer the first create-offer with an
            # error while it is still starting; the next
            # negotiation-needed makes another.
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
        if self.location:
            self.out["deleteStatus"] = request("DELETE", self.location)[0]
        self.out["ok"] = self.out["framesDecoded"] > 0
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
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 4.0
    out = Player(sys.argv[1], seconds).run(seconds + 20)
    print(json.dumps(out))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
