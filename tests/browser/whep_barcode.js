#!/usr/bin/env node
// Glass to glass through any WHEP server, read from what Chromium shows:
// plays URL over WHEP and, for every displayed frame
// (requestVideoFrameCallback), reads the capture time rts-probe paints into
// the top 16 rows of each picture (a white guard block, then 32 blocks,
// most significant bit first, white = 1: the low 32 bits of the Unix time
// in ms) and takes display time minus capture time. Works through a server
// that decodes and re-encodes (the barcode survives it; an SEI does not).
// Prints one JSON line: {ok, samples, latencyMs: {p50, p95, min, max},
// unreadable, width, height}. Exit 0 when at least 2 s of frames were read.
//
//   node whep_barcode.js URL [seconds]
'use strict';
const { open } = require('./chromium');
const { inPage } = require('./page');

// Runs in the page.
async function play(url, seconds) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.appendChild(video);
  const stream = new MediaStream();
  pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
  await offerAnswer(pc, url);
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const samples = [];
  let unreadable = 0;
  let started = null;
  await new Promise((done) => {
    const onFrame = (now, meta) => {
      const w = meta.width, h = meta.height;
      if (canvas.width !== w) { canvas.width = w; canvas.height = 16; }
      ctx.drawImage(video, 0, 0, w, h, 0, 0, w, h);
      const row = ctx.getImageData(0, 8, w, 1).data;
      const block = Math.floor(w / 34);
      const bit = (i) => row[(Math.floor(i * block + block / 2)) * 4] > 128;
      if (!bit(0)) { unreadable++; } else {
        let ms = 0;
        for (let i = 1; i <= 32; i++) ms = ms * 2 + (bit(i) ? 1 : 0);
        // When it is on screen, in Unix ms (low 32 bits).
        const shown = performance.timeOrigin + (meta.expectedDisplayTime || now);
        let d = (shown % 4294967296) - ms;
        if (d < -2147483648) d += 4294967296;
        if (d > -1000 && d < 10000) samples.push(d); else unreadable++;
      }
      if (started === null) started = now;
      if (now - started < seconds * 1000) video.requestVideoFrameCallback(onFrame); else done();
    };
    video.requestVideoFrameCallback(onFrame);
    setTimeout(done, (seconds + 15) * 1000);
  });
  pc.close();
  return { samples, unreadable, width: video.videoWidth, height: video.videoHeight };
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

(async () => {
  const url = process.argv[2];
  const seconds = Number(process.argv[3] || 10);
  if (!url) { console.error('usage: node whep_barcode.js URL [seconds]'); process.exit(2); }
  const out = { url, ok: false };
  let browser;
  try {
    browser = await open();
    const { page } = browser;
    await page.goto(new URL('/', url).toString()).catch(() => {});
    const r = await page.evaluate(inPage(play, url, seconds));
    // The first second is start-up (a burst of queued frames).
    const steady = r.samples.slice(30).sort((a, b) => a - b);
    const round = (v) => (v === null ? null : Math.round(v * 10) / 10);
    out.samples = steady.length;
    out.unreadable = r.unreadable;
    out.width = r.width;
    out.height = r.height;
    out.latencyMs = { p50: round(pct(steady, 0.5)), p95: round(pct(steady, 0.95)), min: round(steady[0] ?? null), max: round(steady[steady.length - 1] ?? null) };
    out.ok = steady.length >= 60;
  } catch (e) {
    out.error = String((e && e.message) || e).split('\n')[0];
  } finally {
    if (browser) await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
})();
