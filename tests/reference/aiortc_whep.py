#!/usr/bin/env python3
"""A reference WebRTC server for side-by-side latency figures
(docs/PERFORMANCE.md): RTMP in, H.264 passed through unchanged to WHEP
viewers by aiortc, AAC decoded and encoded to Opus by aiortc.

RTMP is ffmpeg's own listener (PyAV, `listen=1`): one publisher, then the
server exits when it leaves. A viewer starts at the next keyframe (no GOP
cache). Needs `pip install aiortc aiohttp`.

    python3 tests/reference/aiortc_whep.py --rtmp 127.0.0.1:19350 --http 127.0.0.1:18080
    # publish rtmp://127.0.0.1:19350/live/ref, play POST http://127.0.0.1:18080/whep

Prints "ready" on stdout once both listen.
"""
import argparse
import os
import asyncio
import fractions
import sys
import threading
import logging
import uuid

import av
from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CORS, h264_only  # noqa: E402
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription

QUEUE = 600  # per viewer and track, about 10 s of video: oldest dropped past it


def parameter_sets(extradata):
    """SPS and PPS (Annex B) and the NAL length size from an avcC record."""
    if not extradata or extradata[0] != 1:
        return b"", 4
    length_size = (extradata[4] & 3) + 1
    out, i = b"", 6
    n_sps = extradata[5] & 0x1F
    for _ in range(n_sps):
        size = int.from_bytes(extradata[i : i + 2], "big")
        out += b"\0\0\0\1" + extradata[i + 2 : i + 2 + size]
        i += 2 + size
    n_pps = extradata[i]
    i += 1
    for _ in range(n_pps):
        size = int.from_bytes(extradata[i : i + 2], "big")
        out += b"\0\0\0\1" + extradata[i + 2 : i + 2 + size]
        i += 2 + size
    return out, length_size


def annex_b(data, length_size):
    out, i = bytearray(), 0
    while i + length_size <= len(data):
        size = int.from_bytes(data[i : i + length_size], "big")
        i += length_size
        out += b"\0\0\0\1" + data[i : i + size]
        i += size
    return bytes(out)


class Relay(MediaStreamTrack):
    """One viewer's track, fed from the RTMP thread."""

    def __init__(self, kind, hub):
        super().__init__()
        self.kind = kind
        self.queue = asyncio.Queue(QUEUE)
        self.started = kind == "audio"
        hub.add(self)

    def offer(self, item, keyframe):
        if not self.started:
            if not keyframe:
                return
            self.started = True
        if self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(item)

    async def recv(self):
        return await self.queue.get()


class Hub:
    def __init__(self, loop):
        self.loop = loop
        self.tracks = set()

    def add(self, track):
        self.tracks.add(track)

    def drop(self, tracks):
        self.tracks.difference_update(tracks)

    def send(self, kind, item, keyframe=False):
        def deliver():
            for t in list(self.tracks):
                if t.kind == kind:
                    t.offer(item, keyframe)

        self.loop.call_soon_threadsafe(deliver)


def ingest(url, hub, done):
    try:
        container = av.open(url, format="flv", options={"listen": "1"})
        print(f"aiortc_whep: publisher on {url}", file=sys.stderr, flush=True)
        video = next((s for s in container.streams if s.type == "video"), None)
        audio = next((s for s in container.streams if s.type == "audio"), None)
        to_s16 = av.AudioResampler(format="s16", layout="stereo", rate=48000)
        sps_pps, length_size = parameter_sets(bytes(video.codec_context.extradata or b"")) if video else (b"", 4)
        for packet in container.demux():
            if packet.size == 0:
                continue
            if video is not None and packet.stream is video:
                data = annex_b(bytes(packet), length_size)
                if packet.is_keyframe:
                    data = sps_pps + data
                out = av.Packet(data)
                out.pts = packet.pts
                out.time_base = packet.time_base
                hub.send("video", out, packet.is_keyframe)
            elif audio is not None and packet.stream is audio:
                # aiortc's Opus encoder takes s16 (it resamples the rest).
                for frame in audio.codec_context.decode(packet):
                    for s16 in to_s16.resample(frame):
                        hub.send("audio", s16)
    except Exception as e:  # the publisher's end or a broken input
        print(f"aiortc_whep: ingest ended: {e}", file=sys.stderr, flush=True)
    finally:
        hub.loop.call_soon_threadsafe(done.set)


async def main():
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtmp", default="127.0.0.1:19350")
    ap.add_argument("--http", default="127.0.0.1:18080")
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    hub = Hub(loop)
    done = asyncio.Event()
    pcs = {}


    async def options(request):
        return web.Response(status=204, headers=CORS)

    async def whep(request):
        offer = RTCSessionDescription(sdp=h264_only(await request.text()), type="offer")
        pc = RTCPeerConnection()
        rid = uuid.uuid4().hex
        pcs[rid] = pc
        tracks = [Relay("video", hub), Relay("audio", hub)]
        await pc.setRemoteDescription(offer)
        for t in pc.getTransceivers():
            track = next(x for x in tracks if x.kind == t.kind)
            pc.addTrack(track)

        @pc.on("connectionstatechange")
        async def changed():
            if pc.connectionState in ("failed", "closed"):
                hub.drop(tracks)
                pcs.pop(rid, None)

        await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(
            status=201,
            content_type="application/sdp",
            text=pc.localDescription.sdp,
            headers={"Location": f"/whep/{rid}", **CORS},
        )

    async def delete(request):
        pc = pcs.pop(request.match_info["id"], None)
        if pc:
            await pc.close()
        return web.Response(status=200, headers=CORS)

    app = web.Application()
    app.router.add_post("/whep", whep)
    app.router.add_delete("/whep/{id}", delete)
    app.router.add_route("OPTIONS", "/whep", options)
    app.router.add_route("OPTIONS", "/whep/{id}", options)
    runner = web.AppRunner(app)
    await runner.setup()
    host, port = args.http.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port)).start()
    threading.Thread(target=ingest, args=(f"rtmp://{args.rtmp}/live/ref", hub, done), daemon=True).start()
    print("ready", flush=True)
    await done.wait()
    for pc in list(pcs.values()):
        await pc.close()
    await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
