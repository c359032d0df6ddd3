#!/usr/bin/env node
// Publishes Chromium's fake camera and microphone over WHIP for a few
// seconds, then DELETEs the session; prints one JSON line with what the
// browser reports it sent. Exit 0 when video frames were sent.
//
// With `restart-ice`: one second after connecting, an ICE restart
// (ice_restart.js: restartIce, PATCH, the server's new credentials); a
// line {"restarted", "before", "switched"} is printed once the transport
// selected a pair checked with the new credentials (the PATCH's result and the transport's figures
// before and after), then it publishes `seconds` more. Exit 0 then also needs the PATCH to have answered 200.
//
//   node whip_publish.js URL [seconds] [restart-ice]
'use strict';
const { open, sleep } = require('./chromium');
const { inPage, restart } = require('./page');

async function publish(url) {
  const media = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 360, frameRate: 30 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) pc.addTransceiver(track, { direction: 'sendonly' });
  pc.onconnectionstatechange = () => { if (pc.connectionState === 'connected') window.__rts.connected = true; };
  window.__rts = { pc, media, connected: false };
  Object.assign(window.__rts, await offerAnswer(pc, url));
  return 201;
}

async function stats() {
  const s = await window.__rts.pc.getStats();
  const out = { connected: window.__rts.connected, connectionState: window.__rts.pc.connectionState, video: {}, audio: {} };
  const codecs = {};
  s.forEach((r) => { if (r.type === 'codec') codecs[r.id] = r.mimeType; });
  s.forEach((r) => {
    if (r.type !== 'outbound-rtp') return;
    const o = r.kind === 'video' ? out.video : out.audio;
    Object.assign(o, {
      codec: codecs[r.codecId], packetsSent: r.packetsSent, framesEncoded: r.framesEncoded, framesSent: r.framesSent,
      keyFramesEncoded: r.keyFramesEncoded, nackCount: r.nackCount, pliCount: r.pliCount,
      retransmittedPacketsSent: r.retransmittedPacketsSent, encoderImplementation: r.encoderImplementation,
    });
  });
  return transportStats(s, out);
}

(async () => {
  const url = process.argv[2];
  const seconds = Number(process.argv[3] || 5);
  const restartIce = process.argv[4] === 'restart-ice';
  if (!url) { console.error('usage: node whip_publish.js URL [seconds] [restart-ice]'); process.exit(2); }
  const out = { url, ok: false };
  let browser;
  try {
    browser = await open({ fakeMedia: true });
    const { page } = browser;
    await page.goto(new URL('/', url).toString()).catch(() => {});
    out.postStatus = await page.evaluate(inPage(publish, url));
    const deadline = Date.now() + 10000;
    const statsExpr = inPage(stats);
    let st = await page.evaluate(statsExpr);
    while (!st.connected && Date.now() < deadline && st.connectionState !== 'failed') {
      await sleep(50);
      st = await page.evaluate(statsExpr);
    }
    if (st.connected && restartIce) {
      await sleep(1000);
      out.beforeRestart = await page.evaluate(statsExpr);
      out.restart = await page.evaluate(inPage(restart));
      // Until the transport selects a pair checked with the new
      // credentials (5 s at most).
      const until = Date.now() + 5000;
      const changes = out.beforeRestart.selectedCandidatePairChanges;
      let now = await page.evaluate(statsExpr);
      while (out.restart.after && !(now.selectedCandidatePairChanges > changes) && Date.now() < until) {
        await sleep(50);
        now = await page.evaluate(statsExpr);
      }
      out.switched = now;
      console.log(JSON.stringify({ restarted: out.restart, before: out.beforeRestart, switched: now }));
    }
    if (st.connected) await sleep(seconds * 1000);
    await page.evaluate(`(async () => { for (const t of window.__rts.media.getTracks()) t.stop(); })()`);
    await sleep(500);
    st = await page.evaluate(statsExpr);
    Object.assign(out, st);
    out.deleteStatus = await page.evaluate(`(async () => { const r = await fetch(window.__rts.location, { method: 'DELETE' }); window.__rts.pc.close(); return r.status; })()`);
    out.ok = st.connected && (st.video.framesSent || 0) > 0 && (!restartIce || (out.restart && out.restart.patchStatus === 200));
  } catch (e) {
    out.error = String((e && e.message) || e).split('\n')[0];
  } finally {
    if (browser) await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
})();
