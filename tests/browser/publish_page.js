#!/usr/bin/env node
// Opens the server's publish page (/publish/{app}/{stream}?auth_key=…) in
// headless Chromium with its fake camera and microphone, presses "Camera",
// publishes for S seconds, reads what the page shows (window.rtsPublish),
// presses "Stop". Prints one JSON line; exit 0 when the page went live and
// sent video.
//
//   node publish_page.js PAGE_URL [seconds]
//
// Output: {"ok":bool,"url":…,"state":…,"stats":{width,height,fps,framesSent,
//   videoKbps,audioKbps,rttMs,lossPercent,videoCodec,audioCodec,encoder},
//   "player":"<the page's player link>","deleteStatus":…,"error":…,"pageErrors":[…]}
'use strict';
const { open, sleep } = require('./chromium');

(async () => {
  const url = process.argv[2];
  const seconds = Number(process.argv[3] || 6);
  if (!url) { console.error('usage: node publish_page.js PAGE_URL [seconds]'); process.exit(2); }
  const out = { url, ok: false, pageErrors: [] };
  let browser;
  try {
    browser = await open({ fakeMedia: true });
    const { page } = browser;
    page.on('pageerror', (e) => out.pageErrors.push(String(e.message || e)));
    const resp = await page.goto(url);
    out.pageStatus = resp ? resp.status() : null;
    if (out.pageStatus !== 200) throw new Error(`page ${out.pageStatus}: ${(await resp.text()).trim()}`);
    out.player = await page.evaluate(() => document.getElementById('player')?.href || null);
    await page.click('#camera');
    const read = () => page.evaluate(() => JSON.parse(JSON.stringify(window.rtsPublish)));
    const deadline = Date.now() + 20000;
    let st = await read();
    while (Date.now() < deadline && st.state !== 'error' && !(st.state === 'live' && (st.stats.framesSent || 0) >= 30)) {
      await sleep(100);
      st = await read();
    }
    if (st.state === 'live') await sleep(seconds * 1000);
    st = await read();
    out.state = st.state;
    out.stats = st.stats;
    out.error = st.error;
    out.shown = await page.evaluate(() => document.getElementById('message').textContent);
    await page.click('#stop');
    const stopBy = Date.now() + 5000;
    while (Date.now() < stopBy && (await read()).deleteStatus == null) await sleep(50);
    out.deleteStatus = (await read()).deleteStatus;
    out.ok = st.state === 'live' && (st.stats.framesSent || 0) > 0;
  } catch (e) {
    out.error = String((e && e.message) || e).split('\n')[0];
  } finally {
    if (browser) await browser.close();
  }
  console.log(JSON.stringify(out));
  process.exit(out.ok ? 0 : 1);
})();
