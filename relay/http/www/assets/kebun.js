/* Helpers shared by kebun's pages: the API client, DOM building (text
 * only: nothing from the API ever goes through innerHTML), formatting and
 * lazy loading of the vendored players. Exposed as the global `kb`. */
'use strict';

const kb = (() => {
  const TOKEN_KEY = 'kebun.token';

  /** An API failure: status 0 when kebun could not be reached. */
  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
    }
  }

  function token() {
    try {
      return localStorage.getItem(TOKEN_KEY) || '';
    } catch (e) {
      return ''; // storage disabled (private mode): no token
    }
  }

  function setToken(value) {
    try {
      if (value) localStorage.setItem(TOKEN_KEY, value);
      else localStorage.removeItem(TOKEN_KEY);
      return true;
    } catch (e) {
      return false;
    }
  }

  /* Server clock minus ours (ms), from the Date header, so that uptimes
   * are right on a phone whose clock is off. */
  let skew = 0;

  function now() {
    return Date.now() + skew;
  }

  /**
   * Calls the JSON API. Resolves to the parsed body; rejects with an
   * ApiError carrying the server's {"error": ...} text, or status 0 when
   * the request never got an answer.
   */
  async function api(path, { method = 'GET', body, signal } = {}) {
    const headers = { Accept: 'application/json' };
    const t = token();
    if (t) headers.Authorization = 'Bearer ' + t;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch(path, {
        method, headers, signal, cache: 'no-store',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiError(0, 'kebun cannot be reached (' + e.message + ')');
    }
    const date = Date.parse(res.headers.get('Date') || '');
    if (date) skew = Math.abs(date - Date.now()) > 2000 ? date - Date.now() : 0;
    let text = '';
    try {
      text = await res.text();
    } catch (e) {
      throw new ApiError(0, 'the answer from kebun was cut off (' + e.message + ')');
    }
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (e) {
      data = null;
    }
    if (!res.ok) {
      let msg = data && typeof data.error === 'string' ? data.error
        : 'HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : '');
      if (res.status === 401) msg = 'The API token is missing or wrong (' + msg + ').';
      throw new ApiError(res.status, msg);
    }
    if (data === null || typeof data !== 'object') {
      throw new ApiError(res.status, 'kebun answered ' + path + ' with something that is not JSON');
    }
    return data;
  }

  /**
   * el('li', {class: 'x', onclick: f}, 'text', child) builds an element.
   * Strings become text nodes; attributes are set with setAttribute.
   */
  function el(tag, props, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
      else if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    append(e, kids);
    return e;
  }

  function append(parent, kids) {
    for (const k of kids.flat()) {
      if (k === undefined || k === null || k === false) continue;
      parent.append(typeof k === 'string' || typeof k === 'number' ? document.createTextNode(String(k)) : k);
    }
    return parent;
  }

  /** Replaces an element's children (text-safe). */
  function fill(parent, ...kids) {
    parent.replaceChildren();
    return append(parent, kids);
  }

  /** One path segment, percent-encoded. */
  function seg(s) {
    return encodeURIComponent(s);
  }

  /** The path's segments, decoded: '/replay/a%20b/x' -> ['replay', 'a b', 'x']. */
  function pathParts() {
    return location.pathname.split('/').filter(Boolean).map((p) => {
      try {
        return decodeURIComponent(p);
      } catch (e) {
        return p;
      }
    });
  }

  function pad(n) {
    return String(n).padStart(2, '0');
  }

  /** 3725 -> '1:02:05', 65 -> '1:05'. */
  function clock(seconds) {
    if (!Number.isFinite(seconds) || seconds < 0) return '–';
    const s = Math.floor(seconds);
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return h ? h + ':' + pad(m) + ':' + pad(r) : m + ':' + pad(r);
  }

  /** Seconds since an ISO time, on the server's clock. */
  function since(iso) {
    const t = Date.parse(iso || '');
    return t ? Math.max(0, (now() - t) / 1000) : NaN;
  }

  function ago(iso) {
    const s = since(iso);
    if (!Number.isFinite(s)) return '';
    if (s < 60) return Math.round(s) + ' s ago';
    if (s < 3600) return Math.round(s / 60) + ' min ago';
    if (s < 86400) return Math.round(s / 3600) + ' h ago';
    return dateTime(iso);
  }

  function bitrate(bps) {
    if (!Number.isFinite(bps) || bps <= 0) return '0 kbit/s';
    if (bps < 1e6) return Math.round(bps / 1e3) + ' kbit/s';
    return (bps / 1e6).toFixed(bps < 1e7 ? 2 : 1) + ' Mbit/s';
  }

  function bytes(n) {
    if (!Number.isFinite(n) || n < 0) return '';
    if (n < 1e3) return n + ' B';
    if (n < 1e6) return Math.round(n / 1e3) + ' kB';
    if (n < 1e9) return (n / 1e6).toFixed(n < 1e7 ? 1 : 0) + ' MB';
    return (n / 1e9).toFixed(2) + ' GB';
  }

  function dateTime(iso) {
    const t = Date.parse(iso || '');
    if (!t) return '';
    return new Date(t).toLocaleString(undefined, {
      weekday: 'short', day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit',
    });
  }

  function timeOfDay(iso) {
    const t = Date.parse(iso || '');
    return t ? new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' }) : '';
  }

  const loading = new Map();

  /** Loads a script once; resolves when it has run. */
  function loadScript(src) {
    if (!loading.has(src)) {
      loading.set(src, new Promise((resolve, reject) => {
        const s = el('script', { src });
        s.onload = () => resolve();
        s.onerror = () => {
          loading.delete(src);
          reject(new Error('could not load ' + src));
        };
        document.head.append(s);
      }));
    }
    return loading.get(src);
  }

  const MPEGTS = '/vendor/mpegts.js/mpegts.js';
  const HLS = '/vendor/hls.js/hls.light.min.js';

  /**
   * Live HTTP-FLV into a <video> through mpegts.js, tuned for low
   * latency: no stash buffer, and the buffer chased back to about half a
   * second when it grows (seek past 1.5 s, play at 1.2x past 1.2 s).
   * Returns the player; the caller listens to its events and destroys it.
   */
  function flvPlayer(video, url) {
    /* global mpegts */
    mpegts.LoggingControl.applyConfig({ enableAll: false, enableError: true, enableWarn: false });
    const player = mpegts.createPlayer(
      { type: 'flv', isLive: true, url: new URL(url, location.href).href },
      {
        enableStashBuffer: false,
        liveBufferLatencyChasing: true,
        liveBufferLatencyMaxLatency: 1.5,
        liveBufferLatencyMinRemain: 0.5,
        liveSync: true,
        liveSyncMaxLatency: 1.2,
        liveSyncTargetLatency: 0.8,
        liveSyncPlaybackRate: 1.2,
        lazyLoad: false,
        autoCleanupSourceBuffer: true,
      });
    player.attachMediaElement(video);
    player.load();
    return player;
  }

  /** True when this browser can play live HTTP-FLV through MSE. */
  function flvSupported() {
    /* global mpegts */
    return typeof mpegts !== 'undefined' && mpegts.isSupported() && mpegts.getFeatureList().mseLivePlayback;
  }

  /** True when the <video> element plays HLS itself (Safari, iOS). */
  function nativeHls(video) {
    return !!video.canPlayType('application/vnd.apple.mpegurl');
  }

  /**
   * Plays an HLS playlist: through hls.js where Media Source Extensions
   * exist (hls.js's own advice: some browsers that say they play HLS
   * natively, Android's and lately Chromium's, do it badly), natively
   * where they do not (iPhones before iOS 17.1). Resolves to the Hls
   * instance (null when native); rejects when neither works.
   * onFatal(message) is called on a fatal hls.js error. fromStart plays a
   * recording that is still growing from its beginning (hls.js would start
   * at its live edge).
   */
  async function hlsPlay(video, url, onFatal, fromStart) {
    if ('MediaSource' in window || 'ManagedMediaSource' in window) {
      let ok = false;
      try {
        await loadScript(HLS);
        /* global Hls */
        ok = Hls.isSupported();
      } catch (e) {
        ok = false;
      }
      if (ok) {
        const hls = new Hls({
          enableWorker: true, lowLatencyMode: false, backBufferLength: 60, startPosition: fromStart ? 0 : -1,
        });
        hls.on(Hls.Events.ERROR, (ev, data) => {
          if (data.fatal && onFatal) onFatal(data.details || data.type || 'playback error');
        });
        hls.loadSource(url);
        hls.attachMedia(video);
        return hls;
      }
    }
    if (nativeHls(video)) {
      video.src = url;
      return null;
    }
    throw new Error('this browser can play neither HLS nor Media Source Extensions');
  }

  /**
   * Plays with sound when the browser lets us; otherwise muted, and calls
   * onMuted() so the page can offer an unmute button.
   */
  async function playWithSound(video, onMuted) {
    try {
      await video.play();
    } catch (e) {
      if (e.name !== 'NotAllowedError') return;
      video.muted = true;
      try {
        await video.play();
        if (onMuted) onMuted();
      } catch (e2) {
        /* Not even muted autoplay: the controls' play button remains. */
      }
    }
  }

  /**
   * The player box takes the video's shape once it is known (phones film
   * upright) and no more than 70 % of the screen's height, so that what
   * is under it (download, share) shows on a laptop too.
   */
  function fitPlayer(box, video) {
    video.addEventListener('loadedmetadata', () => {
      if (!video.videoWidth || !video.videoHeight) return;
      const ar = video.videoWidth / video.videoHeight;
      box.style.aspectRatio = String(ar);
      box.style.maxWidth = 'calc(70vh * ' + ar.toFixed(4) + ')';
    });
  }

  /** Marks the nav link for the current page. */
  function markNav() {
    for (const a of document.querySelectorAll('.bar nav a')) {
      const p = a.getAttribute('href');
      if (p === location.pathname || (p !== '/' && location.pathname.startsWith(p))) a.setAttribute('aria-current', 'page');
    }
  }

  return {
    ApiError, api, token, setToken, now, el, append, fill, seg, pathParts, clock, since, ago, bitrate, bytes,
    dateTime, timeOfDay, loadScript, MPEGTS, HLS, flvPlayer, flvSupported, nativeHls, hlsPlay, playWithSound, fitPlayer, markNav,
  };
})();
