"""What the GStreamer webrtcbin scripts share (whep_play.py, whip_publish.py):
the Python-binding workarounds, HTTP, and a WHIP/WHEP session that posts a
non-trickle offer and applies the answer.

Needs Debian's python3-gi, gir1.2-gst-plugins-bad-1.0 and gstreamer1.0-nice
(.ci/install-deps). Loopback only: libnice is told to use 127.0.0.1 and
nothing else.
"""
import ctypes
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


class Session:
    """One WHIP or WHEP session of `pipe`'s webrtcbin `wb`: offer once ICE
    gathering completes, POST it, apply the answer; `seconds` after
    connecting, `finish()` runs (subclasses add to `out` and call
    `done()`)."""

    def __init__(self, url, seconds, pipe, wb):
        self.url, self.seconds, self.pipe, self.wb = url, seconds, pipe, wb
        self.t0 = time.monotonic()
        self.out = {"url": url, "ok": False}
        self.loop = GLib.MainLoop()
        ice = wb.get_property("ice-agent")
        take_ref(ice)
        self.ice = ice
        ice.emit("add-local-ip-address", "127.0.0.1")
        wb.connect("on-negotiation-needed", self.on_negotiation_needed)
        wb.connect("notify::ice-gathering-state", self.on_gathering)
        wb.connect("notify::connection-state", self.on_connection)
        bus = pipe.get_bus()
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

    def before_offer(self, wb):
        """Subclasses adjust the transceivers here."""

    def on_negotiation_needed(self, wb):
        self.before_offer(wb)
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

    def finish(self):
        self.done()
        return False

    def done(self):
        """DELETEs the session and stops."""
        if self.location:
            self.out["deleteStatus"] = request("DELETE", self.location)[0]
        self.loop.quit()

    def run(self, limit):
        self.pipe.set_state(Gst.State.PLAYING)
        GLib.timeout_add(int(limit * 1000), lambda: self.fail(f"no result within {limit} s") or False)
        self.loop.run()
        self.pipe.set_state(Gst.State.NULL)
        return self.out
