// ICE restart from the client side of a WHIP or WHEP session (RFC 9725
// 4.3, RFC 8445 9): pc.restartIce(), PATCH the new ice-ufrag/ice-pwd
// (application/trickle-ice-sdpfrag, If-Match: *), apply the server's new
// credentials from the response to the remote description. `restart` runs
// in the page, on window.__rts = { pc, location, etag }; `inPage()` is the
// source to evaluate there, with the
// helpers in scope, for any page function.
'use strict';

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


// The transport's ICE figures from a getStats() report (in the page too).
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

// An expression that calls `fn` in the page with these helpers in scope
// (`restart`, `transportStats`).
function inPage(fn) {
  return `(() => { ${creds}\n${restart}\n${transportStats}\n return (${fn})(); })()`;
}

module.exports = { inPage, restart };
