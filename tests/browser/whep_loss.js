#!/usr/bin/env node
// N WHEP viewers in one headless Chromium page, started one after another
// (STAGGER ms apart), each measured for SECONDS from one second after its
// first decoded frame: frames decoded in that window (and per second),
// freezes (count, longest, total), NACKs, PLIs, packets lost. Meant to run
// through a lossy UDP relay. Prints one JSON line.
//
//   node whep_loss.js URL N SECONDS [STAGGER_MS]
'use strict';
const { open, sleep } = require('./chromium');

// Runs in the page.
async function startOne(url, i) {
  const v = { i, tPost: 0, firstFrameMs: null, connectedMs: null, error: null, marks: [] };
  (window.__viewers = window.__viewers || []).push(v);
  try {
    const pc = new RTCPeerConnection();
    v.pc = pc;
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    // A media element to play into: without a sink Chromium decodes no audio.
    const el = document.createElement('video');
    el.muted = true;
    el.autoplay = true;
    document.body.appendChild(el);
    const ms = new MediaStream();
    pc.ontrack = (e) => { ms.addTrack(e.track); el.srcObject = ms; };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((r) => {
      if (pc.iceGatheringState === 'complete') return r();
      pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
      setTimeout(r, 1000);
    });
    v.tPost = performance.now();
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === 'connected' && v.connectedMs === null) v.connectedMs = performance.now() - v.tPost;
    };
    const resp = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
    const answer = await resp.text();
    if (resp.status !== 201) throw new Error(`POST ${resp.status}: ${answer}`);
    v.location = resp.headers.get('location');
    await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  } catch (e) {
    v.error = String(e);
  }
}

async function snapshot() {
  const out = [];
  for (const v of window.__viewers || []) {
    const o = { i: v.i, state: v.pc ? v.pc.connectionState : 'none', error: v.error, connectedMs: v.connectedMs,
      framesDecoded: 0, framesReceived: 0, freezeCount: 0, totalFreezesDuration: 0, nackCount: 0, pliCount: 0,
      packetsLost: 0, packetsReceived: 0, audioSamples: 0, concealedSamples: 0, now: performance.now() };
    if (v.pc) {
      const s = await v.pc.getStats();
      s.forEach((r) => {
        if (r.type !== 'inbound-rtp') return;
        if (r.kind === 'video') {
          Object.assign(o, { framesDecoded: r.framesDecoded || 0, framesReceived: r.framesReceived || 0,
            freezeCount: r.freezeCount || 0, totalFreezesDuration: r.totalFreezesDuration || 0,
            nackCount: r.nackCount || 0, pliCount: r.pliCount || 0, packetsLost: r.packetsLost || 0,
            packetsReceived: r.packetsReceived || 0 });
        } else {
          o.audioSamples = r.totalSamplesReceived || 0;
          o.concealedSamples = r.concealedSamples || 0;
        }
      });
      if (o.framesDecoded > 0 && v.firstFrameMs === null) v.firstFrameMs = performance.now() - v.tPost;
    }
    o.firstFrameMs = v.firstFrameMs;
    o.tPost = v.tPost;
    out.push(o);
  }
  return out;
}

async function stop() {
  for (const v of window.__viewers || []) {
    if (v.pc) v.pc.close();
    if (v.location) await fetch(v.location, { method: 'DELETE' }).catch(() => {});
  }
}

(async () => {
  const [url, nArg, secArg, staggerArg] = process.argv.slice(2);
  const n = Number(nArg || 10);
  const seconds = Number(secArg || 8);
  const stagger = Number(staggerArg || 500);
  if (!url) { console.error('usage: node whep_loss.js URL N SECONDS [STAGGER_MS]'); process.exit(2); }
  const out = { url, n, seconds, viewers: [], ok: false };
  let browser;
  try {
    browser = await open();
    const { page } = browser;
    await page.goto(new URL('/', url).toString()).catch(() => {});
    const start = new Array(n).fill(null); // snapshot 1 s after first frame
    const end = new Array(n).fill(null);
    const freezeMax = new Array(n).fill(0);
    let last = null;
    const t0 = Date.now();
    let started = 0;
    const limit = t0 + n * stagger + (seconds + 12) * 1000;
    while (Date.now() < limit && end.some((e) => e === null)) {
      if (started < n && Date.now() >= t0 + started * stagger) {
        await page.evaluate(`(${startOne.toString()})(${JSON.stringify(url)}, ${started})`);
        started++;
      }
      const snap = await page.evaluate(`(${snapshot.toString()})()`);
      for (const s of snap) {
        const i = s.i;
        if (last && last[i]) {
          // Longest freeze: growth of totalFreezesDuration while freezeCount grows by one.
          const prev = last[i];
          if (s.freezeCount > prev.freezeCount) freezeMax[i] = Math.max(freezeMax[i], (s.totalFreezesDuration - prev.totalFreezesDuration) / (s.freezeCount - prev.freezeCount));
        }
      }
      // Take window starts and ends by time since each viewer's first frame.
      for (const s of snap) {
        const i = s.i;
        if (s.firstFrameMs === null) continue;
        const sinceFirst = s.now - (s.tPost + s.firstFrameMs);
        if (start[i] === null && sinceFirst >= 1000) start[i] = s;
        if (start[i] !== null && end[i] === null && s.now - start[i].now >= seconds * 1000) end[i] = s;
      }
      last = {};
      for (const s of snap) last[s.i] = s;
      await sleep(100);
    }
    const snap = await page.evaluate(`(${snapshot.toString()})()`);
    for (let i = 0; i < n; i++) {
      const s0 = start[i]; const s1 = end[i] || snap[i];
      const v = { i, state: s1 ? s1.state : 'none', error: s1 ? s1.error : 'not started', connectedMs: s1 && s1.connectedMs, firstFrameMs: s1 && s1.firstFrameMs };
      if (s0 && s1) {
        const secs = (s1.now - s0.now) / 1000;
        Object.assign(v, {
          windowS: Math.round(secs * 100) / 100,
          framesDecoded: s1.framesDecoded - s0.framesDecoded,
          fps: Math.round(((s1.framesDecoded - s0.framesDecoded) / secs) * 100) / 100,
          freezes: s1.freezeCount - s0.freezeCount,
          freezeTotalMs: Math.round((s1.totalFreezesDuration - s0.totalFreezesDuration) * 1000),
          freezeLongestMs: Math.round(freezeMax[i] * 1000),
          nacks: s1.nackCount, plis: s1.pliCount, packetsLost: s1.packetsLost, packetsReceived: s1.packetsReceived,
          audioSamples: s1.audioSamples - s0.audioSamples, concealedSamples: s1.concealedSamples - s0.concealedSamples,
        });
      }
      out.viewers.push(v);
    }
    await page.evaluate(`(${stop.toString()})()`).catch(() => {});
    out.ok = out.viewers.every((v) => v.framesDecoded > 0);
  } catch (e) {
    out.error = String((e && e.message) || e).split('\n')[0];
  } finally {
    if (browser) await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
})();
