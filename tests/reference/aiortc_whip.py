#!/usr/bin/env python3
"""A reference WebRTC server for the WHIP-to-WHEP latency figure
(docs/PERFORMANCE.md): WHIP in, WHEP out, with aiortc. aiortc cannot
forward encoded media: it decodes what the publisher sends and encodes it
again for each viewer (its MediaRelay shares the decoded frames). One
publisher; a viewer that arrives first waits for it. Needs
`pip install aiortc aiohttp`.

    python3 tests/reference/aiortc_whip.py --http 127.0.0.1:18081
    # publish POST http://127.0.0.1:18081/whip, play POST http://127.0.0.1:18081/whep

Prints "ready" on stdout once it listens.
"""
import argparse
import sys
import os
import asyncio
import logging
import uuid

from aiohttp import web

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import CORS, h264_only  # noqa: E402
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay


async def main():
    logging.basicConfig(level=logging.WARNING)
    ap = argparse.ArgumentParser()
    ap.add_argument("--http", default="127.0.0.1:18081")
    args = ap.parse_args()
    relay = MediaRelay()
    published = {}  # kind -> the publisher's track
    arrived = asyncio.Event()
    pcs = {}

    async def answer(pc, rid, path):
        await pc.setLocalDescription(await pc.createAnswer())
        return web.Response(
            status=201,
            content_type="application/sdp",
            text=pc.localDescription.sdp,
            headers={"Location": f"/{path}/{rid}", **CORS},
        )

    async def whip(request):
        pc = RTCPeerConnection()
        rid = uuid.uuid4().hex
        pcs[rid] = pc

        @pc.on("track")
        def on_track(track):
            published[track.kind] = track
            if "video" in published:
                arrived.set()

        await pc.setRemoteDescription(RTCSessionDescription(sdp=await request.text(), type="offer"))
        return await answer(pc, rid, "whip")

    async def whep(request):
        offer = RTCSessionDescription(sdp=h264_only(await request.text()), type="offer")
        await asyncio.wait_for(arrived.wait(), 30)
        pc = RTCPeerConnection()
        rid = uuid.uuid4().hex
        pcs[rid] = pc
        await pc.setRemoteDescription(offer)
        for t in pc.getTransceivers():
            source = published.get(t.kind)
            if source is None:
                continue
            pc.addTrack(relay.subscribe(source))
        return await answer(pc, rid, "whep")

    async def delete(request):
        pc = pcs.pop(request.match_info["id"], None)
        if pc:
            await pc.close()
        return web.Response(status=200, headers=CORS)

    async def options(request):
        return web.Response(status=204, headers=CORS)

    app = web.Application()
    for path in ("whip", "whep"):
        app.router.add_post(f"/{path}", whip if path == "whip" else whep)
        app.router.add_delete(f"/{path}/{{id}}", delete)
        app.router.add_route("OPTIONS", f"/{path}", options)
        app.router.add_route("OPTIONS", f"/{path}/{{id}}", options)
    runner = web.AppRunner(app)
    await runner.setup()
    host, port = args.http.rsplit(":", 1)
    await web.TCPSite(runner, host, int(port)).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
