// The browser half of tests/web/test_web.py: one step per call, in a
// fresh headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core, which downloads no browser).
//
//   node web.mjs STEP CONFIG-JSON
//
// STEP is watch, dashboard or replay; CONFIG-JSON is what test_web.py
// knows (base URL, token, secrets, platform B, screenshot directory...).
// Prints one "ok   ..." or "FAIL ..." line per check, like kbtest.py, and
// exits 1 when any check failed.
import { chromium } from 'playwright-core';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [step, cfgText] = process.argv.slice(2);
const cfg = JSON.parse(cfgText || '{}');
const failures = [];
const children = [];

function log(msg) {
  const d = new Date();
  const hh = [d.getHours(), d.getMinutes(), d.getSeconds()].map((n) => String(n).padStart(2, '0')).join(':');
  console.log(`[${hh}] ${msg}`);
}

function check(cond, what, got, want) {
  if (cond) {
    log('ok   ' + what);
    return true;
  }
  let detail = '';
  if (got !== undefined || want !== undefined) {
    detail = `\n       got:  ${JSON.stringify(got)}\n       want: ${JSON.stringify(want)}`;
  }
  log('FAIL ' + what + detail);
  failures.push(what);
  return false;
}

/** Like check(), but stops the step: what follows depends on it. */
class Stop extends Error {}
function require(cond, what, got, want) {
  if (!check(cond, what, got, want)) throw new Stop(what);
}

async function launch() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kebun-chromium-'));
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: cfg.chromium || '/usr/bin/chromium',
    headless: false, // the flags below say --headless=new themselves
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--hide-scrollbars'],
    viewport: { width: 1280, height: 800 },
    timeout: 60000, // a loaded two-core machine starts Chromium slowly
  });
  context.setDefaultTimeout(20000);
  const consoleLines = [];
  const pageErrors = [];
  const watch = (page) => {
    page.on('console', (m) => consoleLines.push(m.type() + ': ' + m.text()));
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('dialog', (d) => d.accept());
  };
  context.on('page', watch);
  for (const p of context.pages()) watch(p);
  /* Media errors on any <video>, from the first moment. */
  await context.addInitScript(() => {
    window.__mediaErrors = [];
    document.addEventListener('error', (e) => {
      if (e.target instanceof HTMLMediaElement) {
        const err = e.target.error;
        window.__mediaErrors.push(err ? err.code + ' ' + err.message : 'error');
      }
    }, true);
  });
  const page = context.pages()[0] || await context.newPage();
  return {
    context, page, consoleLines, pageErrors,
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Screenshots of the page at a phone's and a laptop's size. */
async function shots(page, name, { full = false, settle } = {}) {
  for (const [w, h] of [[360, 780], [1280, 800]]) {
    await page.setViewportSize({ width: w, height: h });
    if (settle) await settle();
    else await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const file = path.join(cfg.shots, `${name}-${w}x${h}.png`);
    await page.screenshot({ path: file, fullPage: full });
    log('screenshot ' + file);
  }
}

/** Resolves once a presented video frame arrives (layout settled). */
function nextFrame(page, selector = 'video') {
  return page.evaluate((sel) => new Promise((resolve) => {
    const v = document.querySelector(sel);
    if (!v || !v.requestVideoFrameCallback) return resolve();
    const t = setTimeout(resolve, 3000);
    v.requestVideoFrameCallback(() => {
      clearTimeout(t);
      resolve();
    });
  }), selector);
}

async function api(p, opts = {}) {
  const headers = { Authorization: 'Bearer ' + cfg.token, ...(opts.headers || {}) };
  const res = await fetch(cfg.base + p, { ...opts, headers });
  const text = await res.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch (e) {
    body = text;
  }
  return { status: res.status, body };
}

async function until(what, fn, timeoutMs = 15000, everyMs = 250) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    last = await fn();
    if (last) return last;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return last;
}

function noSecrets(text, where) {
  const found = (cfg.secrets || []).filter((s) => text.includes(s));
  check(!found.length, 'no stream or platform key in ' + where, found.length + ' key(s) found', 0);
}

/* --------------------------------------------------------------- watch */

/**
 * Latency from the publisher's clock to the screen. The publisher burns
 * its wall clock (10 ms units, 20 bits) into each frame as a row of black
 * or white 24 px cells on a white band (see STAMP in test_web.py); here
 * each presented frame is drawn to a canvas, the cells are read back and
 * compared with this machine's clock (the same clock: loopback).
 */
function sampleLatency(page, ms) {
  return page.evaluate((ms) => new Promise((resolve) => {
    const video = document.querySelector('video');
    const w = video.videoWidth;
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = 40;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    const out = { lat: [], bad: 0, t0: video.currentTime, t1: 0 };
    const start = performance.now();
    const onFrame = () => {
      const wall = Date.now();
      ctx.drawImage(video, 0, 0, w, video.videoHeight);
      const d = ctx.getImageData(0, 0, w, 40).data;
      const lum = (x, y) => {
        const i = (y * w + x) * 4;
        return 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
      };
      /* The band's margin is white: a frame without the band (or a
       * broken decode) is not counted. */
      if (lum(3, 3) > 200 && lum(500, 20) < 256) {
        let v = 0;
        for (let k = 0; k < 20; k++) if (lum(8 + 24 * k + 12, 20) < 128) v |= 1 << k;
        const units = (((Math.floor(wall / 10) - v) % 1048576) + 1048576) % 1048576;
        out.lat.push(units * 10);
      } else {
        out.bad++;
      }
      if (performance.now() - start < ms) video.requestVideoFrameCallback(onFrame);
      else {
        out.t1 = video.currentTime;
        resolve(out);
      }
    };
    video.requestVideoFrameCallback(onFrame);
  }), ms);
}

function median(a) {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)] : NaN;
}

async function playing(page, minTime, timeoutMs) {
  return page.waitForFunction((t) => {
    const v = document.querySelector('video');
    return v && !v.paused && v.currentTime > t && v.readyState >= 3;
  }, minTime, { timeout: timeoutMs }).then(() => true, () => false);
}

/** What the page's video is doing, for a failure's message. */
async function videoState(page, b) {
  const st = await page.evaluate(() => {
    const v = document.querySelector('video');
    const o = document.getElementById('overlay');
    return v ? {
      currentTime: v.currentTime, paused: v.paused, readyState: v.readyState, networkState: v.networkState,
      overlay: o && !o.hidden ? o.textContent.trim() : '', mediaErrors: window.__mediaErrors,
    } : 'no video element';
  }).catch((e) => 'page gone: ' + e.message);
  return { video: st, console: b ? b.consoleLines.slice(-5) : [], scriptErrors: b ? b.pageErrors : [] };
}

async function overlayText(page) {
  return page.evaluate(() => {
    const o = document.getElementById('overlay');
    return o && !o.hidden ? o.textContent.trim() : '';
  });
}

async function stepWatch() {
  const b = await launch();
  const { page } = b;
  try {
    const url = cfg.base + '/watch/' + cfg.stream;
    await page.goto(url);
    const started = Date.now();
    require(await playing(page, 0.3, 30000), '/watch/' + cfg.stream + ' starts playing (HTTP-FLV through mpegts.js)',
      await videoState(page, b), 'playing');
    log('first picture after ' + (Date.now() - started) + ' ms');
    check(await overlayText(page) === '', 'no overlay over the playing video', await overlayText(page), '');
    const muted = await page.evaluate(() => document.querySelector('video').muted);
    const unmuteShown = await page.evaluate(() => !document.getElementById('unmute').hidden);
    check(!muted || unmuteShown, 'a muted autoplay offers "Tap for sound"', { muted, unmuteShown }, 'button shown');

    /* Let the latency chaser settle, then measure for 3 s. */
    await playing(page, 2.5, 10000);
    const s = await sampleLatency(page, 3000);
    const med = median(s.lat);
    log(`latency over 3 s: ${s.lat.length} frames read, ${s.bad} unreadable, median ${med} ms, ` +
      `min ${Math.min(...s.lat)} ms, max ${Math.max(...s.lat)} ms`);
    check(s.lat.length >= 20, 'the time stamp is read from at least 20 frames in 3 s', s.lat.length, '>= 20');
    check(med < 2000, 'publisher-to-screen latency under 2 s (median)', med, '< 2000 ms');
    check(s.t1 - s.t0 >= 2.0, 'currentTime advances over 3 s', +(s.t1 - s.t0).toFixed(2), '>= 2.0');
    const errs = await page.evaluate(() => window.__mediaErrors);
    check(errs.length === 0, 'no error event on the video', errs, []);
    await shots(page, 'watch', { settle: () => nextFrame(page) });
    check(b.pageErrors.length === 0, 'no script errors on the live page', b.pageErrors, []);
    await page.close();

    /* The HLS fallbacks. (a) mpegts.js says live playback through Media
     * Source is not there but Media Source is: the live recording's HLS
     * through the vendored hls.js. (b) No Media Source at all, as on an
     * iPhone before iOS 17.1: the browser's own HLS player. */
    for (const noMse of [false, true]) {
      const p2 = await b.context.newPage();
      await p2.addInitScript((removeMse) => {
        if (removeMse) {
          delete window.MediaSource;
          delete window.ManagedMediaSource;
          delete window.WebKitMediaSource;
          return;
        }
        let real;
        Object.defineProperty(window, 'mpegts', {
          configurable: true,
          get: () => real,
          set: (m) => {
            real = m;
            const f = m.getFeatureList.bind(m);
            m.getFeatureList = () => ({ ...f(), mseLivePlayback: false });
          },
        });
      }, noMse);
      await p2.goto(url);
      const native = await p2.evaluate(() => !!document.createElement('video').canPlayType('application/vnd.apple.mpegurl'));
      if (noMse && !native) {
        /* This Chromium has no HLS of its own: the page must say so. */
        const said = await until('cannot play', async () => /cannot play/.test(await overlayText(p2)), 15000);
        check(said, 'without Media Source nor native HLS, /watch says it cannot play', await overlayText(p2), '... cannot play ...');
        await p2.close();
        continue;
      }
      const hlsOk = await playing(p2, 0.5, 30000);
      const how = await p2.evaluate(() => {
        const v = document.querySelector('video');
        return {
          src: v.currentSrc,
          status: document.getElementById('status').textContent,
          hlsjs: typeof window.Hls !== 'undefined',
          behind: v.seekable.length ? +(v.seekable.end(v.seekable.length - 1) - v.currentTime).toFixed(1) : null,
        };
      });
      const way = noMse ? 'natively (no Media Source, as on an old iPhone)' : 'through hls.js';
      if (!hlsOk) how.video = await videoState(p2, b);
      check(hlsOk && /recording/.test(how.status) && how.hlsjs === !noMse,
        'when mpegts.js cannot play live, /watch plays the live recording\'s HLS ' + way, how,
        { playing: true, status: '... from the recording ...', hlsjs: !noMse });
      /* Only hls.js is held to the live end: Chromium's own HLS player
       * starts a growing playlist at its beginning and reports nothing
       * seekable (Safari, the real user of this path, starts near the end
       * as RFC 8216 6.3.3 asks, and the page seeks there if it does not). */
      /* hls.js starts three target durations (3 x 6 s) from the end; a
       * recording's start would be a minute or more behind by now. */
      if (!noMse) check(how.behind !== null && how.behind < 30, '... near its live end', how.behind, '< 30 s behind');
      await p2.close();
    }

    /* The replay page of the recording being made: no MP4 yet, so its
     * HLS, through hls.js, from its beginning rather than its live edge. */
    const p4 = await b.context.newPage();
    await p4.goto(cfg.base + '/replay/' + cfg.liveRecording);
    await p4.waitForSelector('video', { timeout: 10000 });
    await p4.evaluate(() => {
      const v = document.querySelector('video');
      v.muted = true;
      return v.play().catch(() => {});
    });
    const hlsReplay = await playing(p4, 0.5, 20000);
    const at = await p4.evaluate(() => ({
      t: document.querySelector('video').currentTime,
      hlsjs: typeof window.Hls !== 'undefined',
      download: !!document.querySelector('a[download]'),
      note: document.querySelector('main').textContent.includes('MP4 download appears'),
    }));
    check(hlsReplay && at.hlsjs && at.t < 8, 'a recording still being made replays through hls.js from its start',
      at, { hlsjs: true, t: '< 8 s' });
    check(!at.download && at.note, 'it offers no download yet and says when there will be one', at, { download: false, note: true });
    await p4.close();

    /* An idle stream: the page waits, starts by itself when the phone
     * begins, and goes back to waiting when it stops. */
    const p3 = await b.context.newPage();
    await p3.goto(cfg.base + '/watch/' + cfg.quiet.stream);
    const waitText = await until('waiting text', async () => {
      const t = await overlayText(p3);
      return /Waiting for the broadcast/.test(t) ? t : '';
    }, 10000);
    check(!!waitText, 'an idle stream\'s page says it is waiting for the broadcast', await overlayText(p3),
      'Waiting for the broadcast…');
    await shots(p3, 'watch-waiting');
    const pub = spawn(cfg.ffmpeg, cfg.quiet.publish, { stdio: ['ignore', 'ignore', 'pipe'] });
    children.push(pub);
    let pubErr = '';
    pub.stderr.on('data', (d) => { pubErr += d; });
    const began = await playing(p3, 0.3, 30000);
    check(began, 'the waiting page starts playing by itself when the broadcast begins', await videoState(p3, b), 'playing');
    const code = await new Promise((r) => (pub.exitCode !== null ? r(pub.exitCode) : pub.on('exit', r)));
    check(code === 0, 'the second publisher ran to its end', [code, pubErr.slice(-300)], 0);
    const back = await until('waiting again', async () => /Waiting for the broadcast|ended/.test(await overlayText(p3)), 25000);
    check(back, 'after the broadcast, the page says so and waits again', await overlayText(p3), 'Waiting…/ended');
    check(b.pageErrors.length === 0, 'no script errors on the live pages', b.pageErrors, []);
  } finally {
    await b.close();
  }
}

/* ----------------------------------------------------------- dashboard */

async function destState(page, stream, id) {
  return page.evaluate(([s, d]) => {
    const li = document.querySelector(`section[data-stream="${CSS.escape(s)}"] li.dest[data-id="${CSS.escape(d)}"]`);
    if (!li) return null;
    return { state: li.dataset.state, text: li.innerText, err: li.querySelector('.dest-err').hidden ? '' : li.querySelector('.dest-err').textContent };
  }, [stream, id]);
}

async function stepDashboard() {
  const b = await launch();
  const { page } = b;
  const S = cfg.stream;
  const card = `section[data-stream="${S}"]`;
  try {
    await page.goto(cfg.base + '/');
    await page.waitForSelector(card);
    check(await page.textContent(card + ' .badge') === 'live', 'the dashboard shows ' + S + ' live',
      await page.textContent(card + ' .badge'), 'live');
    const facts = await page.textContent(card + ' .facts');
    check(/Up \d+:\d\d/.test(facts) && /Mbit\/s|kbit\/s/.test(facts) && /H\.264 640×360/.test(facts),
      'uptime, bitrate in and the video format are shown', facts, 'Up m:ss, In ... kbit/s, H.264 640×360');

    const a = await until('platform A live', async () => {
      const d = await destState(page, S, cfg.platformA.id);
      return d && d.state === 'live' ? d : null;
    }, 15000);
    check(!!a, 'destination ' + cfg.platformA.id + ' is shown live (green)', await destState(page, S, cfg.platformA.id), 'live');
    check(a && a.text.includes(cfg.platformA.masked), 'its URL is shown masked', a && a.text, cfg.platformA.masked);
    const broken = await until('broken retrying', async () => {
      const d = await destState(page, S, cfg.broken.id);
      return d && d.state === 'retrying' && d.err ? d : null;
    }, 15000);
    check(!!broken, 'destination ' + cfg.broken.id + ' is shown retrying (amber) with its last error and when',
      await destState(page, S, cfg.broken.id), 'retrying, "Error (HH:MM, N s ago): ..."');
    if (broken) log('broken destination says: ' + broken.err);
    const thumb = await until('thumbnail', () => page.evaluate((c) => {
      const img = document.querySelector(c + ' .media img');
      return img && !img.hidden && img.naturalWidth > 0 ? img.getAttribute('src') : null;
    }, card), 20000);
    check(!!thumb, 'the live recording\'s thumbnail is shown', thumb, '/rec/.../thumb.jpg');
    await shots(page, 'dashboard');
    await page.setViewportSize({ width: 360, height: 780 });
    await page.screenshot({ path: path.join(cfg.shots, 'dashboard-360-full.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });

    /* The live preview, muted, on demand. */
    await page.click(card + ' button:has-text("Preview")');
    const previewOk = await page.waitForFunction((c) => {
      const v = document.querySelector(c + ' .media video');
      return v && v.muted && v.currentTime > 0.5;
    }, card, { timeout: 20000 }).then(() => true, () => false);
    check(previewOk, 'Preview plays the stream, muted, in the card');
    await nextFrame(page, card + ' .media video');
    await page.screenshot({ path: path.join(cfg.shots, 'dashboard-preview-1280x800.png') });
    await page.click(card + ' button:has-text("Stop preview")');
    check(await page.$(card + ' .media video') === null, 'Stop preview removes the player');

    /* Without a token a change is refused with a clear message. */
    await page.click(card + ' .add summary');
    const form = card + ' .add form';
    await page.selectOption(form + ' select', 'custom');
    await page.fill(form + ' input[name=url]', cfg.platformB.server);
    await page.fill(form + ' input[name=key]', cfg.platformB.key);
    await page.fill(form + ' input[name=label]', cfg.platformB.id);
    check(await page.getAttribute(form + ' input[name=key]', 'type') === 'password', 'the key field is a password field');
    await page.click(form + ' button[type=submit]');
    const noToken = await until('401 message', async () => {
      const m = await page.textContent(form + ' .msg');
      return /token/i.test(m) ? m : null;
    });
    check(!!noToken && await page.getAttribute(form + ' .msg', 'class') === 'msg error',
      'without the token, adding is refused and the form says the token is missing or wrong',
      await page.textContent(form + ' .msg'), 'Not added: The API token is missing or wrong (...)');
    check(await page.evaluate(() => document.getElementById('settings').open), 'the token field is opened for it');

    /* The token, stored in localStorage. */
    await page.fill('#token', cfg.token);
    await page.click('#token-form button[type=submit]');
    check(await page.evaluate(() => localStorage.getItem('kebun.token')) === cfg.token, 'the token is kept in localStorage');
    await page.click('#settings summary');

    /* A value the server refuses: its error is shown beside the form. */
    await page.fill(form + ' input[name=url]', cfg.platformB.server.replace(/\/[^/]*$/, ''));
    await page.fill(form + ' input[name=key]', '');
    await page.click(form + ' button[type=submit]');
    const bad = await until('400 message', async () => {
      const m = await page.textContent(form + ' .msg');
      return /^Not added: /.test(m) && !/token/i.test(m) ? m : null;
    });
    check(!!bad, 'a URL kebun refuses: the API\'s error is shown beside the form', await page.textContent(form + ' .msg'),
      'Not added: <the API\'s error>');
    if (bad) log('the form says: ' + bad);
    await page.screenshot({ path: path.join(cfg.shots, 'dashboard-form-error-1280x800.png') });

    /* Adding platform B (custom server URL + key + label). */
    await page.fill(form + ' input[name=url]', cfg.platformB.server);
    await page.fill(form + ' input[name=key]', cfg.platformB.key);
    await page.fill(form + ' input[name=label]', cfg.platformB.id);
    await page.click(form + ' button[type=submit]');
    const added = await until('added', async () => /^Added /.test(await page.textContent(form + ' .msg')), 10000);
    check(added, 'adding a destination from the form succeeds', await page.textContent(form + ' .msg'), 'Added ...');
    check(await page.inputValue(form + ' input[name=key]') === '', 'the key field is cleared after success');
    const bLive = await until('platform B live', async () => {
      const d = await destState(page, S, cfg.platformB.id);
      return d && d.state === 'live' ? d : null;
    }, 20000);
    check(!!bLive, 'the added destination goes live on the dashboard', await destState(page, S, cfg.platformB.id), 'live');
    const viaApi = await api('/api/v1/streams/' + S);
    const apiB = (viaApi.body.destinations || []).find((d) => d.id === cfg.platformB.id);
    check(apiB && apiB.state === 'live' && apiB.source === 'api', 'the API shows it live, added through the API',
      apiB, { state: 'live', source: 'api' });
    /* What platform B received: nginx records each publish to a file
     * that grows while the stream flows. */
    let prev = null;
    const grows = await until('platform B file grows', () => {
      const files = fs.existsSync(cfg.platformB.recDir) ? fs.readdirSync(cfg.platformB.recDir).filter((f) => f.endsWith('.flv')) : [];
      const size = files.reduce((n, f) => n + fs.statSync(path.join(cfg.platformB.recDir, f)).size, 0);
      const ok = prev !== null && size > prev + 10000;
      prev = size;
      return ok ? size : null;
    }, 15000, 1000);
    check(!!grows, 'platform B (nginx-rtmp) receives the stream: its recording grows', grows, '> 10 kB a second');

    noSecrets(await page.content(), 'the dashboard\'s HTML');
    noSecrets(JSON.stringify(await page.evaluate(() => [...document.querySelectorAll('input')].map((i) => i.value))), 'its fields after adding');
    noSecrets(b.consoleLines.join('\n'), 'the browser console');
    await shots(page, 'dashboard-added');

    /* Removing it. */
    await page.click(`${card} li.dest[data-id="${cfg.platformB.id}"] button`);
    const gone = await until('removed', async () => (await destState(page, S, cfg.platformB.id)) === null, 10000);
    check(gone, 'Remove takes the destination off the dashboard');
    const after = await api('/api/v1/streams/' + S);
    check(!(after.body.destinations || []).some((d) => d.id === cfg.platformB.id), 'and off the API');

    /* Kicking the publisher (after a confirmation). */
    await page.click(card + ' button:has-text("Kick publisher")');
    const kicked = await until('kicked', async () => /^Disconnected /.test(await page.textContent(card + ' .stream-body > .msg')), 10000);
    check(kicked, 'Kick publisher disconnects the phone and says whom', await page.textContent(card + ' .stream-body > .msg'),
      'Disconnected ADDR.');
    const notLive = await until('not live', async () => (await page.textContent(card + ' .badge')) !== 'live', 10000);
    check(notLive, 'the stream is no longer shown live', await page.textContent(card + ' .badge'), 'grace or idle');
    check(b.pageErrors.length === 0, 'no script errors on the dashboard', b.pageErrors, []);
  } finally {
    await b.close();
  }
}

/* -------------------------------------------------------------- replay */

async function stepReplay() {
  const b = await launch();
  const { page } = b;
  const r = cfg.recording;
  try {
    await b.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cfg.base });
    await page.goto(cfg.base + '/replay');
    const link = `a.card[href="${r.urls.page}"]`;
    const found = await page.waitForSelector(link, { timeout: 10000 }).then(() => true, () => false);
    require(found, '/replay lists the finished recording', await page.textContent('main'), r.urls.page);
    const text = await page.textContent(link);
    const dur = Math.floor(r.duration / 60) + ':' + String(Math.floor(r.duration % 60)).padStart(2, '0');
    check(text.includes(cfg.stream) && text.includes(dur), 'its card shows the stream and the duration', text, [cfg.stream, dur]);
    const local = await page.evaluate((iso) => new Date(iso).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }), r.start);
    check(text.includes(local), 'and the local time it started', text, local);
    check(await page.evaluate((l) => document.querySelector(l + ' img').naturalWidth > 0, link), 'and its thumbnail');
    await shots(page, 'replay-list');

    await page.goto(cfg.base + '/replay/' + cfg.stream);
    check(await page.waitForSelector(link, { timeout: 10000 }).then(() => true, () => false), '/replay/' + cfg.stream + ' lists it too');
    await shots(page, 'replay-stream');

    await page.click(link);
    await page.waitForURL('**' + r.urls.page);
    await page.waitForFunction(() => document.querySelector('video') && document.querySelector('video').readyState >= 1, null, { timeout: 10000 });
    const src = await page.evaluate(() => document.querySelector('video').currentSrc);
    check(src.endsWith(r.urls.mp4), 'the replay page plays the recording\'s MP4', src, r.urls.mp4);
    await page.evaluate(() => {
      const v = document.querySelector('video');
      v.muted = true;
      return v.play();
    });
    check(await playing(page, 1.0, 10000), 'the recording plays');
    const target = Math.round(r.duration * 0.6 * 10) / 10;
    const seek = await page.evaluate((t) => new Promise((resolve) => {
      const v = document.querySelector('video');
      const to = setTimeout(() => resolve({ seeked: false, at: v.currentTime }), 10000);
      v.addEventListener('seeked', () => {
        clearTimeout(to);
        resolve({ seeked: true, at: v.currentTime });
      }, { once: true });
      v.currentTime = t;
    }), target);
    check(seek.seeked && Math.abs(seek.at - target) < 0.5, 'seeking to ' + target + ' s takes effect', seek, target);
    check(await playing(page, target + 1.0, 10000), 'and it plays on from there');
    const errs = await page.evaluate(() => window.__mediaErrors);
    check(errs.length === 0, 'no error event on the replay', errs, []);

    const dl = await page.getAttribute('a[download]', 'href');
    check(dl === r.urls.mp4, 'a download link to the MP4', dl, r.urls.mp4);
    const range = await page.evaluate(async (u) => {
      const res = await fetch(u, { headers: { Range: 'bytes=100-199' } });
      return { status: res.status, range: res.headers.get('Content-Range'), len: (await res.arrayBuffer()).byteLength };
    }, r.urls.mp4);
    check(range.status === 206 && range.len === 100, 'the MP4 is served with Range (what seeking uses)', range, '206, 100 bytes');
    await page.click('button:has-text("Copy link")');
    const copied = await page.evaluate(() => navigator.clipboard.readText().catch((e) => 'error: ' + e.message));
    check(copied === cfg.base + r.urls.page, 'Copy link copies the page\'s own URL', copied, cfg.base + r.urls.page);
    await page.evaluate(() => document.querySelector('video').pause());
    await shots(page, 'replay-one');
    check(b.pageErrors.length === 0, 'no script errors on the replay pages', b.pageErrors, []);
  } finally {
    await b.close();
  }
}

/* ---------------------------------------------------------------- main */

const steps = { watch: stepWatch, dashboard: stepDashboard, replay: stepReplay };

async function main() {
  if (!steps[step]) {
    console.error('usage: node web.mjs watch|dashboard|replay CONFIG-JSON');
    return 2;
  }
  fs.mkdirSync(cfg.shots, { recursive: true });
  try {
    await steps[step]();
  } catch (e) {
    if (!(e instanceof Stop)) {
      log('FAIL step ' + step + ' stopped: ' + (e.stack || e));
      failures.push(step + ': ' + e.message);
    }
  } finally {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  }
  if (failures.length) log(`${failures.length} browser check(s) failed in ${step}`);
  return failures.length ? 1 : 0;
}

process.exitCode = await main();
