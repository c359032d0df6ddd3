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
  const page = ctx.pages()[0] || (await ctx.newPage());
  const close = async () => {
    await ctx.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  };
  return { page, close };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { open, sleep };
