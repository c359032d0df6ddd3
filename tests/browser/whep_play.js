#!/usr/bin/env node
// Plays a WHEP endpoint in headless Chromium for a few seconds and prints
// one JSON line: time to first decoded frame, frames received/decoded,
// audio codec and samples, the selected candidate pair. Exit 0 when video
// frames were decoded. PC_CONFIG is an RTCPeerConnection configuration in
// JSON (e.g. TURN servers and `"iceTransportPolicy":"relay"`).
//
//   node whep_play.js URL [seconds] [PC_CONFIG]
'use strict';
const { open, sleep } = require('./chromium');

// Runs in the page.
async function play(url, config) {
  const t0 = performance.now();
  const pc = new RTCPeerConnection(config || {});
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.body.appendChild(video);
  const stream = new MediaStream();
  pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
  await pc.setLocalDescription(await pc.createOffer());
  // Non-trickle: wait for gathering (bounded) so the offer is complete.
  await new Promise((r) => {
    if (pc.iceGatheringState === 'complete') return r();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
    setTimeout(r, 1000);
  });
  const tPost = performance.now();
  const resp = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
  const answer = await resp.text();
  const answerMs = performance.now() - tPost;
  if (resp.status !== 201) throw new Error(`POST ${resp.status}: ${answer}`);
  window.__rts = { pc, tPost, t0, location: resp.headers.get('location'), firstFrameMs: null, firstPacketMs: null, connectedMs: null, answerMs };
  pc.onconnectionstatechange = () => { if (pc.connectionState === 'connected') window.__rts.connectedMs = performance.now() - tPost; };
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  const poll = async () => {
    while (window.__rts.firstFrameMs === null) {
      const s = await pc.getStats();
      s.forEach((r) => {
        if (r.type === 'inbound-rtp' && r.kind === 'video' && r.packetsReceived > 0 && window.__rts.firstPacketMs === null) {
          window.__rts.firstPacketMs = performance.now() - tPost;
        }
        if (r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded > 0 && window.__rts.firstFrameMs === null) {
          window.__rts.firstFrameMs = performance.now() - tPost;
        }
      });
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  poll();
  return { status: resp.status };
}

async function stats() {
  const s = await window.__rts.pc.getStats();
  const out = { firstFrameMs: window.__rts.firstFrameMs, firstPacketMs: window.__rts.firstPacketMs, connectedMs: window.__rts.connectedMs, answerMs: window.__rts.answerMs, connectionState: window.__rts.pc.connectionState, video: {}, audio: {} };
  const codecs = {};
  s.forEach((r) => { if (r.type === 'codec') codecs[r.id] = r.mimeType; });
  const byId = {};
  s.forEach((r) => { byId[r.id] = r; });
  s.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId && byId[r.selectedCandidatePairId]) {
      const pair = byId[r.selectedCandidatePairId];
      const local = byId[pair.localCandidateId] || {};
      const remote = byId[pair.remoteCandidateId] || {};
      out.selectedPair = { local: { type: local.candidateType, protocol: local.protocol, relayProtocol: local.relayProtocol },
        remote: { type: remote.candidateType, protocol: remote.protocol, address: remote.address, port: remote.port } };
    }
  });
  s.forEach((r) => {
    if (r.type !== 'inbound-rtp') return;
    const o = r.kind === 'video' ? out.video : out.audio;
    Object.assign(o, {
      codec: codecs[r.codecId], packetsReceived: r.packetsReceived, packetsLost: r.packetsLost,
      framesReceived: r.framesReceived, framesDecoded: r.framesDecoded, keyFramesDecoded: r.keyFramesDecoded,
      frameWidth: r.frameWidth, frameHeight: r.frameHeight, pliCount: r.pliCount, nackCount: r.nackCount,
      framesDropped: r.framesDropped, jitterBufferEmittedCount: r.jitterBufferEmittedCount,
      totalSamplesReceived: r.totalSamplesReceived, concealedSamples: r.concealedSamples,
    });
  });
  return out;
}

async function stop() {
  window.__rts.pc.close();
  const loc = window.__rts.location;
  if (!loc) return null;
  const r = await fetch(new URL(loc, window.__rtsBase).toString(), { method: 'DELETE' });
  return r.status;
}

(async () => {
  const url = process.argv[2];
  const seconds = Number(process.argv[3] || 5);
  const pcConfig = process.argv[4] ? JSON.parse(process.argv[4]) : {};
  if (!url) { console.error('usage: node whep_play.js URL [seconds]'); process.exit(2); }
  const out = { url, ok: false };
  let browser;
  try {
    browser = await open();
    const { page } = browser;
    await page.goto(new URL('/', url).toString()).catch(() => {});
    await page.evaluate((u) => { window.__rtsBase = u; }, url);
    await page.evaluate(`(${play.toString()})(${JSON.stringify(url)}, ${JSON.stringify(pcConfig)})`);
    const deadline = Date.now() + 10000;
    let st = await page.evaluate(`(${stats.toString()})()`);
    while (st.firstFrameMs === null && Date.now() < deadline && st.connectionState !== 'failed') {
      await sleep(50);
      st = await page.evaluate(`(${stats.toString()})()`);
    }
    if (st.firstFrameMs !== null) {
      await sleep(seconds * 1000);
      st = await page.evaluate(`(${stats.toString()})()`);
    }
    Object.assign(out, st);
    out.deleteStatus = await page.evaluate(`(${stop.toString()})()`).catch((e) => String(e));
    out.ok = (st.video.framesDecoded || 0) > 0;
  } catch (e) {
    out.error = String((e && e.message) || e).split('\n')[0];
  } finally {
    if (browser) await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
})();
