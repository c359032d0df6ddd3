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
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => {
    if (pc.iceGatheringState === 'complete') return r();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
    setTimeout(r, 1000);
  });
  const resp = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
  const answer = await resp.text();
  if (resp.status !== 201) throw new Error(`POST ${resp.status}: ${answer}`);
  window.__rts = { pc, location: new URL(resp.headers.get('location'), url).toString(), etag: resp.headers.get('etag') };
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
}

function creds(sdp) {
  const u = /a=ice-ufrag:(\S+)/.exec(sdp);
  const p = /a=ice-pwd:(\S+)/.exec(sdp);
  return { ufrag: u && u[1], pwd: p && p[1] };
}

// Runs in the page: the restart.
async function restart() {
  const pc = window.__rts.pc;
  const before = { local: creds(pc.localDescription.sdp).ufrag, remote: creds(pc.remoteDescription.sdp).ufrag };
  pc.restartIce();
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const mine = creds(pc.localDescription.sdp);
  const frag = `a=ice-ufrag:${mine.ufrag}\r\na=ice-pwd:${mine.pwd}\r\n`;
  const resp = await fetch(window.__rts.location, {
    method: 'PATCH',
    headers: { 'content-type': 'application/trickle-ice-sdpfrag', 'if-match': '*' },
    body: frag,
  });
  const body = await resp.text();
  const out = { patchStatus: resp.status, etagBefore: window.__rts.etag, etagAfter: resp.headers.get('etag'), before };
  if (resp.status !== 200) { out.patchBody = body; return out; }
  const theirs = creds(body);
  const answer = pc.remoteDescription.sdp
    .replace(/a=ice-ufrag:\S+/g, `a=ice-ufrag:${theirs.ufrag}`)
    .replace(/a=ice-pwd:\S+/g, `a=ice-pwd:${theirs.pwd}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  out.after = { local: creds(pc.localDescription.sdp).ufrag, remote: creds(pc.remoteDescription.sdp).ufrag };
  return out;
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
    if (r.type === 'transport') {
      out.iceLocalUsernameFragment = r.iceLocalUsernameFragment;
      out.selectedCandidatePairChanges = r.selectedCandidatePairChanges;
      out.selectedCandidatePairId = r.selectedCandidatePairId;
    }
  });
  return out;
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
    await page.evaluate(`(${play.toString()})(${JSON.stringify(url)})`);
    const deadline = Date.now() + 10000;
    let st = await page.evaluate(`(${stats.toString()})()`);
    while (st.framesDecoded < 30 && Date.now() < deadline && st.connectionState !== 'failed') {
      await sleep(50);
      st = await page.evaluate(`(${stats.toString()})()`);
    }
    out.beforeRestart = st;
    if (st.framesDecoded < 30) throw new Error(`no playback before the restart: ${JSON.stringify(st)}`);
    out.restart = await page.evaluate(`(() => { ${creds.toString()}
 return (${restart.toString()})(); })()`);
    out.atRestart = await page.evaluate(`(${stats.toString()})()`);
    await sleep(seconds * 1000);
    out.afterRestart = await page.evaluate(`(${stats.toString()})()`);
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
