#!/usr/bin/env node
// Opens the server's own web player (/play/{app}/{stream}?… or
// /play?url=artc://…) in headless Chromium and reads what the page exposes
// in window.rtsPlayer. Prints one JSON line; exit 0 when the expectation
// holds, 1 when not (or on a timeout), 2 on bad usage.
//
//   node player_page.js PLAYER_URL [--frames N] [--latency] [--seconds S] [--timeout S]
//   node player_page.js PLAYER_URL --expect-error STATUS [--expect-text TEXT] [--timeout S]
//
// Default: waits until the page has decoded N video frames (default 30) and,
// with --latency, until it shows a latency figure (the stream must carry the
// rts-wallclock-v1 SEI). --expect-error STATUS waits until the page reports
// an HTTP error with that status (403, 404) and checks that the server's
// reason text is shown in the page (#message); --expect-text also requires
// TEXT in it. Timeout: 15 s by default. --seconds S: once the expectation
// holds, keep playing S more seconds and report the figures then (steady
// state). At the end the driver leaves the page like a user closing the tab;
// deleteStatus is the HTTP status the server gave the player's DELETE of
// its WHEP session (null when the page had no session).
//
// RTS_PLAYER_HTML=path serves that file as the page (playwright routing), to
// try an edited player against any WHEP server without rebuilding.
//
// Output: {"ok":bool,"url":…,"state":…,"framesDecoded":…,"framesReceived":…,
//   "width":…,"height":…,"fps":…,"bitrateKbps":…,"packetsLost":…,
//   "jitterBufferMs":…,"ttffMs":…,"latencyMs":…|null,"latencyReceiveMs":…|null,
//   "latencySource":"display"|"arrival"|null,"videoCodec":…,"audioCodec":…,
//   "audioSamplesReceived":…,"transform":…,"reconnects":…,
//   "error":{"kind","status","message"}|null,"shown":"<#message text>",
//   "deleteStatus":200|null,"pageErrors":[…],"reason":"<why ok is false>"}
'use strict';
const fs = require('fs');
const { open, sleep } = require('./chromium');

function usage(msg) {
  if (msg) console.error(msg);
  console.error('usage: node player_page.js PLAYER_URL [--frames N] [--latency] [--seconds S] [--timeout S] [--expect-error STATUS [--expect-text TEXT]]');
  process.exit(2);
}

function parseArgs(argv) {
  const o = { url: null, frames: 30, latency: false, seconds: 0, timeout: 15, expectError: null, expectText: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
    if (a === '--frames') o.frames = Number(val());
    else if (a === '--latency') o.latency = true;
    else if (a === '--timeout') o.timeout = Number(val());
    else if (a === '--seconds') o.seconds = Number(val());
    else if (a === '--expect-error') o.expectError = Number(val());
    else if (a === '--expect-text') o.expectText = val();
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else if (!o.url) o.url = a;
    else usage(`extra argument ${a}`);
  }
  if (!o.url) usage();
  if (!Number.isFinite(o.frames) || !Number.isFinite(o.timeout) || !Number.isFinite(o.seconds) || (o.expectError !== null && !Number.isFinite(o.expectError))) usage('numbers expected');
  return o;
}

// Runs in the page.
function read() {
  const p = window.rtsPlayer;
  if (!p) return null;
  const m = document.getElementById('message');
  return {
    state: p.state,
    stats: p.stats,
    error: p.lastError,
    transform: p.transform,
    reconnects: p.reconnects,
    shown: m ? m.textContent : '',
  };
}

(async () => {
  const o = parseArgs(process.argv.slice(2));
  const out = { ok: false, url: o.url };
  const pageErrors = [];
  let browser;
  try {
    browser = await open();
    const { page } = browser;
    page.on('pageerror', (e) => pageErrors.push(String(e.message || e).split('\n')[0]));
    if (process.env.RTS_PLAYER_HTML) {
      const html = fs.readFileSync(process.env.RTS_PLAYER_HTML, 'utf8');
      const pagePath = new URL(o.url).pathname;
      await page.route((u) => u.pathname === pagePath, (route) =>
        route.fulfill({ status: 200, contentType: 'text/html; charset=utf-8', body: html }));
    }
    let deleteStatus = null;
    page.on('response', (r) => { if (r.request().method() === 'DELETE') deleteStatus = r.status(); });
    const resp = await page.goto(o.url, { timeout: o.timeout * 1000 });
    if (!resp || resp.status() !== 200) throw new Error(`player page: HTTP ${resp ? resp.status() : 'no response'}`);
    const deadline = Date.now() + o.timeout * 1000;
    let st = null;
    let reason = 'timeout';
    for (;;) {
      st = await page.evaluate(read);
      if (!st) { reason = 'window.rtsPlayer missing'; }
      else if (o.expectError !== null) {
        const e = st.error;
        if (e && e.status === o.expectError) {
          const shows = st.shown.includes(e.message) && (o.expectText === null || st.shown.includes(o.expectText));
          if (shows) { out.ok = true; break; }
          reason = `error ${e.status} "${e.message}" not shown in the page`;
        } else if (e) {
          reason = `error ${e.status}: ${e.message}`;
        }
      } else {
        const s = st.stats || {};
        if ((s.framesDecoded || 0) >= o.frames && (!o.latency || s.latencyMs != null)) { out.ok = true; break; }
        if (st.state === 'error') { reason = `page error: ${st.shown}`; break; }
        reason = (s.framesDecoded || 0) >= o.frames ? 'no latency figure' : `${s.framesDecoded || 0} frames decoded`;
      }
      if (Date.now() > deadline) { reason = `timeout: ${reason}`; break; }
      await sleep(100);
    }
    if (out.ok && o.seconds > 0) {
      await sleep(o.seconds * 1000);
      st = await page.evaluate(read);
    }
    const s = (st && st.stats) || {};
    Object.assign(out, {
      state: st && st.state,
      framesDecoded: s.framesDecoded ?? 0, framesReceived: s.framesReceived ?? 0,
      width: s.width ?? null, height: s.height ?? null, fps: s.fps ?? null,
      bitrateKbps: s.bitrateKbps ?? null, packetsLost: s.packetsLost ?? null,
      jitterBufferMs: s.jitterBufferMs ?? null, ttffMs: s.ttffMs ?? null,
      latencyMs: s.latencyMs ?? null, latencyReceiveMs: s.latencyReceiveMs ?? null,
      latencySource: s.latencySource ?? null,
      videoCodec: s.videoCodec ?? null, audioCodec: s.audioCodec ?? null,
      audioSamplesReceived: s.audioSamplesReceived ?? null,
      transform: st && st.transform, reconnects: st && st.reconnects,
      error: (st && st.error) || null, shown: st && st.shown,
    });
    if (!out.ok) out.reason = reason;
    // Leave like a user closing the tab: the page DELETEs its session on
    // pagehide (a keepalive fetch). Playwright does not see requests made
    // while a page unloads, so fire pagehide first, then navigate away.
    const hadSession = await page.evaluate(() => !!(window.rtsPlayer && window.rtsPlayer.resource)).catch(() => false);
    if (hadSession) {
      await page.evaluate(() => window.dispatchEvent(new PageTransitionEvent('pagehide', { persisted: false }))).catch(() => {});
      const until = Date.now() + 3000;
      while (deleteStatus === null && Date.now() < until) await sleep(50);
    }
    out.deleteStatus = deleteStatus;
    await page.goto('about:blank').catch(() => {});
  } catch (e) {
    out.reason = String((e && e.message) || e).split('\n')[0];
  } finally {
    out.pageErrors = pageErrors;
    if (browser) await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
})();
