// Launches Debian's Chromium headless through playwright-core (no browser
// download), with the switches WebRTC on loopback needs.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

const CHROMIUM = process.env.RTS_CHROMIUM || '/usr/bin/chromium';

const SWITCHES = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
  // ICE on 127.0.0.1: allow loopback candidates, never resolve names.
  '--allow-loopback-in-peer-connection',
  '--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1',
];
const FAKE_MEDIA = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream'];

async function open({ fakeMedia } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'rts-chromium-'));
  const ctx = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...SWITCHES, ...(fakeMedia ? FAKE_MEDIA : [])],
  });
  // A fresh page: the persistent context's first tab may still navigate to
  // its start-up page, which destroys the context of a later evaluate().
  const page = await ctx.newPage();
  for (const p of ctx.pages()) if (p !== page) await p.close().catch(() => {});
  const close = async () => {
    await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { page, close };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { open, sleep };
