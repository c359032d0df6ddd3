#!/usr/bin/env node
// ICE restart of a WHEP session in headless Chromium (RFC 8445 9; WHEP
// client side of RFC 9725 4.3): plays URL, then pc.restartIce(), PATCHes the
// new ice-ufrag/ice-pwd (application/trickle-ice-sdpfrag, If-Match: *),
// applies the server's new credentials from the response to the answer,
// and keeps playing. Prints one JSON line: frames decoded before and after
// the restart, the PATCH status and ETags, the local/remote ufrags before
// and after. Exit 0 when frames were decoded after the restart.
//
//   node whep_restart.js URL [seconds-after]
'use strict';
const { open, sleep } = require('./chromium');
const { inPage, restart } = require('./page');

// Runs in the page.
async function play(url) {
  const pc = new RTCPeerConnection();
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  document.body.appendChild(video);
  const stream = new MediaStream();
  pc.ontrack = (e) => { stream.addTrack(e.track); video.srcObject = stream; };
  window.__rts = { pc, ...(await offerAnswer(pc, url)) };
}

async function stats() {
  const s = await window.__rts.pc.getStats();
  const out = { connectionState: window.__rts.pc.connectionState, framesDecoded: 0, packetsReceived: 0 };
  s.forEach((r) => {
    if (r.type === 'inbound-rtp' && r.kind === 'video') {
      out.framesDecoded = r.framesDecoded || 0;
      out.framesReceived = r.framesReceived || 0;
      out.packetsReceived = r.packetsReceived || 0;
    }
  });
  return transportStats(s, out);
}

async function stop() {
  window.__rts.pc.close();
  const r = await fetch(window.__rts.location, { method: 'DELETE' });
  return r.status;
}

(async () => {
  const url = process.argv[2];
  const seconds = Number(process.argv[3] || 4);
  if (!url) { console.error('usage: node whep_restart.js URL [seconds-after]'); process.exit(2); }
  const out = { url, ok: false };
  let browser;
  try {
    browser = await open();
    const { page } = browser;
    await page.goto(new URL('/', url).toString()).catch(() => {});
    await page.evaluate(inPage(play, url));
    const statsExpr = inPage(stats);
    const deadline = Date.now() + 10000;
    let st = await page.evaluate(statsExpr);
    while (st.framesDecoded < 30 && Date.now() < deadline && st.connectionState !== 'failed') {
      await sleep(50);
      st = await page.evaluate(statsExpr);
    }
    out.beforeRestart = st;
    if (st.framesDecoded < 30) throw new Error(`no playback before the restart: ${JSON.stringify(st)}`);
    out.restart = await page.evaluate(inPage(restart));
    out.atRestart = await page.evaluate(statsExpr);
    await sleep(seconds * 1000);
    out.afterRestart = await page.evaluate(statsExpr);
    out.deleteStatus = await page.evaluate(`(${stop.toString()})()`).catch((e) => String(e));
    out.ok = out.restart.patchStatus === 200 && out.afterRestart.framesDecoded > out.atRestart.framesDecoded;
  } catch (e) {
    out.error = String((e && e.message) || e).split('\n')[0];
  } finally {
    if (browser) await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
})();
