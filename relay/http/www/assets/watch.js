/* The live page (/watch/NAME). Plays /live/NAME.flv through mpegts.js
 * (low latency, chasing the live edge) where Media Source Extensions work;
 * elsewhere (older iPhones) the HLS playlist of the live recording,
 * natively or through hls.js. While nobody broadcasts it says so and asks
 * again every few seconds; a broken connection is retried with backoff. */
'use strict';

(() => {
  const name = kb.pathParts()[1] || '';
  const video = document.getElementById('video');
  const box = document.getElementById('player');
  const overlay = document.getElementById('overlay');
  const overlayText = document.getElementById('overlay-text');
  const overlayHint = document.getElementById('overlay-hint');
  const spinner = document.getElementById('spinner');
  const unmute = document.getElementById('unmute');
  const badge = document.getElementById('badge');
  const viewers = document.getElementById('viewers');
  const status = document.getElementById('status');

  const IDLE_RECHECK_MS = 3000;
  const STATE_REFRESH_MS = 10000;
  const STALL_MS = 15000;

  let player = null;     // mpegts.js player
  let hls = null;        // hls.js instance (null when native or FLV)
  let mode = '';         // 'flv' | 'hls' | ''
  let timer = null;
  let failures = 0;
  let lastTime = -1;
  let lastProgress = 0;
  let stream = null;

  document.title = name + ' · live';
  document.getElementById('title').textContent = name || 'Live';
  document.getElementById('replays').href = '/replay/' + kb.seg(name);
  document.getElementById('replays').textContent = 'Earlier broadcasts of ' + name;
  video.setAttribute('aria-label', 'Live video of ' + name);

  /* The overlay covers the player while there is nothing to play; the
   * video's controls would be dead under it, so they go too. */
  function showOverlay(text, busy, hint) {
    overlayText.textContent = text;
    overlayHint.textContent = hint || '';
    overlayHint.hidden = !hint;
    spinner.hidden = !busy;
    overlay.hidden = false;
    video.controls = false;
  }

  function hideOverlay() {
    overlay.hidden = true;
    video.controls = true;
  }

  function setStatus(text, isError) {
    status.textContent = text || '';
    status.classList.toggle('error', !!isError);
  }

  function showState(s) {
    stream = s;
    const state = s.state === 'live' || s.state === 'grace' ? s.state : 'idle';
    badge.hidden = false;
    badge.className = 'badge ' + state;
    badge.textContent = state === 'grace' ? 'paused' : state;
    const watching = (s.players || 0) + ' watching';
    viewers.textContent = state === 'live' ? watching + ' · live since ' + kb.timeOfDay(s.since)
      : state === 'grace' ? watching + ' · the phone is reconnecting' : '';
  }

  function schedule(fn, ms) {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  }

  function backoff() {
    failures++;
    return Math.min(1000 * 2 ** failures, 15000);
  }

  function teardown() {
    setStatus('');
    video.removeEventListener('error', nativeFailed);
    if (player) {
      player.destroy();
      player = null;
    }
    if (hls) {
      hls.destroy();
      hls = null;
    }
    if (mode === 'hls') {
      video.removeAttribute('src');
      video.load();
    }
    mode = '';
  }

  /* Asks kebun what the stream is doing, then plays or waits. */
  async function check() {
    clearTimeout(timer);
    let s = null;
    try {
      s = await kb.api('/public/v1/streams/' + kb.seg(name));
      showState(s);
    } catch (e) {
      if (e.status === 404) {
        teardown();
        showOverlay('There is no stream called “' + name + '”. Check the link.', false);
        return;
      }
      /* kebun may be restarting: try the stream itself, which needs no
       * API. */
      setStatus(e.status === 0 ? e.message : '');
    }
    if (s && s.state === 'idle') {
      if (mode) teardown();
      failures = 0;
      showOverlay('Waiting for the broadcast…', true, 'This page starts playing by itself when it begins.');
      schedule(check, IDLE_RECHECK_MS);
      return;
    }
    if (mode) {
      schedule(check, STATE_REFRESH_MS);
      return;
    }
    await start(s);
  }

  async function start(s) {
    showOverlay('Connecting…', true);
    let flv = false;
    try {
      await kb.loadScript(kb.MPEGTS);
      flv = kb.flvSupported();
    } catch (e) {
      flv = false;
    }
    if (flv) startFlv(s);
    else await startHls(s);
  }

  function startFlv(s) {
    /* global mpegts */
    mode = 'flv';
    lastTime = -1;
    lastProgress = Date.now();
    player = kb.flvPlayer(video, (s && s.flv) || '/live/' + kb.seg(name) + '.flv');
    player.on(mpegts.Events.ERROR, (type, detail, info) => {
      teardown();
      /* Refused because nobody broadcasts (when the API could not say so). */
      if (info && (info.code === 404 || info.code === 409)) {
        showOverlay('Waiting for the broadcast…', true, 'This page starts playing by itself when it begins.');
        schedule(check, IDLE_RECHECK_MS * 2);
        return;
      }
      const why = info && info.msg ? info.msg : detail;
      const wait = backoff();
      showOverlay('The connection was lost (' + why + ').', true, 'Trying again in ' + Math.round(wait / 1000) + ' s…');
      schedule(check, wait);
    });
    player.on(mpegts.Events.LOADING_COMPLETE, () => {
      /* kebun closed the stream: the broadcast ended. */
      teardown();
      showOverlay('The broadcast ended.', false);
      schedule(check, 1000);
    });
    kb.playWithSound(video, () => {
      unmute.hidden = false;
    });
    schedule(check, STATE_REFRESH_MS);
  }

  /* HLS playback failed (hls.js's fatal error, or the native player's
   * error event): ask again after a backoff. */
  function hlsFailed(why) {
    teardown();
    const wait = backoff();
    showOverlay('Playback failed (' + why + ').', true, 'Trying again in ' + Math.round(wait / 1000) + ' s…');
    schedule(check, wait);
  }

  function nativeFailed() {
    const e = video.error;
    hlsFailed(e ? 'media error ' + e.code : 'media error');
  }

  async function startHls(s) {
    const path = s && s.recording && s.recording.path;
    if (!path) {
      showOverlay(s ? 'This browser can only play “' + name + '” from its recording, and it is not being recorded.'
        : 'This browser cannot play the live stream directly, and kebun did not say where its recording is.', false);
      schedule(check, IDLE_RECHECK_MS * 5);
      return;
    }
    mode = 'hls';
    lastTime = -1;
    lastProgress = Date.now();
    const url = '/rec/' + path.split('/').map(kb.seg).join('/') + '/index.m3u8';
    try {
      hls = await kb.hlsPlay(video, url, hlsFailed);
    } catch (e) {
      mode = '';
      showOverlay('This browser cannot play live video: ' + e.message + '.', false);
      return;
    }
    if (!hls) {
      /* A native player may refuse a playlist that has too few segments
       * yet (Chromium's wants three): try again, as for hls.js. */
      video.addEventListener('error', nativeFailed);
      /* A native player may start a growing playlist at its beginning:
       * go to a few seconds before its end, as a live player would. */
      video.addEventListener('loadedmetadata', () => {
        const r = video.seekable;
        if (r.length && r.end(r.length - 1) - video.currentTime > 12) video.currentTime = r.end(r.length - 1) - 8;
      }, { once: true });
    }
    setStatus('Playing from the recording (a few seconds behind).');
    kb.playWithSound(video, () => {
      unmute.hidden = false;
    });
    schedule(check, STATE_REFRESH_MS);
  }

  video.addEventListener('playing', () => {
    failures = 0;
    hideOverlay();
  });
  video.addEventListener('waiting', () => {
    if (mode && stream && stream.state === 'grace') showOverlay('The phone lost its connection; waiting for it to come back…', true);
  });
  video.addEventListener('ended', () => {
    teardown();
    showOverlay('The broadcast ended.', false);
    schedule(check, 1000);
  });

  kb.fitPlayer(box, video);

  unmute.addEventListener('click', () => {
    video.muted = false;
    unmute.hidden = true;
    if (video.paused) video.play().catch(() => {});
  });
  video.addEventListener('volumechange', () => {
    if (!video.muted) unmute.hidden = true;
  });

  /* A stream that stops moving for 15 s without the viewer pausing it is
   * reconnected: some stalls never raise an error. Not while the phone is
   * away within its grace period: the connection is fine, there is just
   * nothing to show. */
  setInterval(() => {
    if (!mode || video.paused || (stream && stream.state === 'grace')) {
      lastProgress = Date.now();
      return;
    }
    if (video.currentTime !== lastTime) {
      lastTime = video.currentTime;
      lastProgress = Date.now();
    } else if (Date.now() - lastProgress > STALL_MS) {
      teardown();
      showOverlay('The picture stopped; reconnecting…', true);
      schedule(check, 500);
    }
  }, 1000);

  if (!name) {
    showOverlay('This link names no stream: it should look like /watch/NAME.', false);
    return;
  }
  check();
})();
