#!/usr/bin/env node
// N WHEP viewers of one URL in one headless Chromium page (N peer
// connections, each its own WHEP session). Prints `{"ready":…}` once every
// viewer decoded video (or after 15 s), then holds the sessions: each
// `stats` line on stdin prints `{"viewers":[…]}`; `stop` (or stdin closing,
// or 2 minutes) DELETEs them and prints the final JSON.
//
//   node whep_many.js URL N
'use strict';
const readline = require('readline');
const { open, sleep } = require('./chromium');
const { inPage } = require('./page');

// Runs in the page.
async function start(url, n) {
  window.__viewers = [];
  for (let i = 0; i < n; i++) {
    const pc = new RTCPeerConnection();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    let location;
    try {
      ({ location } = await offerAnswer(pc, url));
    } catch (e) {
      throw new Error(`viewer ${i}: ${e.message}`);
    }
    window.__viewers.push({ pc, location });
  }
}

async function stats() {
  const out = [];
  for (const v of window.__viewers) {
    const s = await v.pc.getStats();
    const o = { state: v.pc.connectionState, framesDecoded: 0, framesReceived: 0, audioSamples: 0, senderReports: {} };
    s.forEach((r) => {
      // RTCP sender reports received (they map RTP time to the sender's clock).
      if (r.type === 'remote-outbound-rtp') o.senderReports[r.kind] = r.reportsSent || 0;
      if (r.type !== 'inbound-rtp') return;
      if (r.kind === 'video') { o.framesDecoded = r.framesDecoded || 0; o.framesReceived = r.framesReceived || 0; }
      if (r.kind === 'audio') o.audioSamples = r.totalSamplesReceived || 0;
    });
    out.push(o);
  }
  return out;
}

async function stop() {
  const codes = [];
  for (const v of window.__viewers) {
    v.pc.close();
    const r = await fetch(v.location, { method: 'DELETE' });
    codes.push(r.status);
  }
  return codes;
}

(async () => {
  const url = process.argv[2];
  const n = Number(process.argv[3] || 10);
  if (!url) { console.error('usage: node whep_many.js URL N'); process.exit(2); }
  const out = { url, n, ok: false };
  let browser;
  try {
    browser = await open();
    const { page } = browser;
    await page.goto(new URL('/', url).toString()).catch(() => {});
    await page.evaluate(inPage(start, url, n));
    const deadline = Date.now() + 15000;
    let st = await page.evaluate(`(${stats.toString()})()`);
    while (st.some((v) => v.framesDecoded === 0) && Date.now() < deadline) {
      await sleep(100);
      st = await page.evaluate(`(${stats.toString()})()`);
    }
    console.log(JSON.stringify({ ready: st.filter((v) => v.framesDecoded > 0).length }));
    const rl = readline.createInterface({ input: process.stdin });
    const lines = rl[Symbol.asyncIterator]();
    const until = Date.now() + 120000;
    while (Date.now() < until) {
      const next = await Promise.race([lines.next(), sleep(until - Date.now()).then(() => ({ done: true }))]);
      if (next.done || next.value.trim() === 'stop') break;
      if (next.value.trim() === 'stats') console.log(JSON.stringify({ viewers: await page.evaluate(`(${stats.toString()})()`) }));
    }
    rl.close();
    out.viewers = await page.evaluate(`(${stats.toString()})()`);
    out.deleteStatus = await page.evaluate(`(${stop.toString()})()`);
    out.ok = out.viewers.every((v) => v.framesDecoded > 0);
  } catch (e) {
    out.error = String((e && e.message) || e).split('\n')[0];
  } finally {
    if (browser) await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
})();
