// Page-side helpers the drivers share; they run in the page, and
// `inPage(fn, ...args)` is the expression that calls a page function with
// them in scope:
// - offerAnswer(pc, url): a non-trickle offer (gathering bounded to 1 s)
//   POSTed as application/sdp (WHIP or WHEP), the answer applied; returns
//   { location, etag } and throws with the server's reason on a non-201;
// - restart(): ICE restart from the client side (RFC 9725 4.3, RFC 8445 9)
//   on window.__rts = { pc, location, etag }: pc.restartIce(), PATCH the new
//   ice-ufrag/ice-pwd (application/trickle-ice-sdpfrag, If-Match: *), the
//   server's new credentials applied to the remote description;
// - transportStats(report, out): the transport's ICE figures of a
//   getStats() report.
'use strict';

async function offerAnswer(pc, url) {
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => {
    if (pc.iceGatheringState === 'complete') return r();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r();
    setTimeout(r, 1000);
  });
  const resp = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/sdp' }, body: pc.localDescription.sdp });
  const answer = await resp.text();
  if (resp.status !== 201) throw new Error(`POST ${resp.status}: ${answer}`);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  return { location: new URL(resp.headers.get('location'), url).toString(), etag: resp.headers.get('etag') };
}

function creds(sdp) {
  const u = /a=ice-ufrag:(\S+)/.exec(sdp);
  const p = /a=ice-pwd:(\S+)/.exec(sdp);
  return { ufrag: u && u[1], pwd: p && p[1] };
}

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


function transportStats(report, out) {
  report.forEach((r) => {
    if (r.type === 'transport') {
      out.iceLocalUsernameFragment = r.iceLocalUsernameFragment;
      out.selectedCandidatePairChanges = r.selectedCandidatePairChanges;
      out.selectedCandidatePairId = r.selectedCandidatePairId;
    }
  });
  return out;
}

function inPage(fn, ...args) {
  const helpers = [offerAnswer, creds, restart, transportStats].join('\n');
  return `(() => { ${helpers}\n return (${fn})(${args.map((a) => JSON.stringify(a)).join(', ')}); })()`;
}

module.exports = { inPage, restart };
