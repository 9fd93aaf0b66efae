/* The staff dashboard (/): every stream with its state, destinations and
 * recording, polled from GET /api/v1/streams every 2 s (backing off to
 * 30 s while kebun does not answer). Each stream's card and each
 * destination's line are built once and updated in place, so a form being
 * filled in, a focused button or a running preview survive the polling. */
'use strict';

(() => {
  const { el, fill, api } = kb;

  const POLL_MS = 2000;
  const BACKOFF_MAX_MS = 30000;
  const REQUEST_TIMEOUT_MS = 8000;

  /* What a push line starts with for each platform (config/push.c). */
  const PRESETS = [
    { id: 'youtube', label: 'YouTube', hint: 'YouTube Studio → Go live → Stream key.' },
    { id: 'youtube-rtmps', label: 'YouTube (RTMPS, encrypted)', hint: 'YouTube Studio → Go live → Stream key.' },
    { id: 'facebook', label: 'Facebook Live', hint: 'Live Producer → Stream key (the part after /rtmp/).' },
    { id: 'twitch', label: 'Twitch', hint: 'Creator dashboard → Settings → Stream → Primary stream key.' },
    { id: 'custom', label: 'Other (server URL + key)', hint: 'TikTok, Shopee and others give a server URL and a stream key.' },
  ];

  const LABEL_RE = /^[A-Za-z0-9._-]{1,40}$/;

  const streamsEl = document.getElementById('streams');
  const banner = document.getElementById('banner');
  const settings = document.getElementById('settings');
  const cards = new Map();
  let timer = null;
  let failures = 0;
  let retryAt = 0;
  let ticker = null;
  let polling = false;

  /* ---------------------------------------------------------------- token */

  const tokenForm = document.getElementById('token-form');
  const tokenInput = document.getElementById('token');
  const tokenMsg = document.getElementById('token-msg');

  function showTokenState() {
    tokenInput.value = '';
    tokenInput.placeholder = kb.token() ? 'saved (type to replace)' : 'not set';
  }

  tokenForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = tokenInput.value.trim();
    if (!v) {
      say(tokenMsg, 'Type the token first.', true);
      return;
    }
    if (!kb.setToken(v)) {
      say(tokenMsg, 'This browser does not allow storing the token (private mode?).', true);
      return;
    }
    showTokenState();
    say(tokenMsg, 'Saved.');
    poll();
  });

  document.getElementById('token-forget').addEventListener('click', () => {
    kb.setToken('');
    showTokenState();
    say(tokenMsg, 'Forgotten.');
  });

  function askForToken() {
    settings.open = true;
    tokenInput.focus();
  }

  /* --------------------------------------------------------------- helpers */

  function say(p, text, isError) {
    p.textContent = text || '';
    p.classList.toggle('error', !!isError && !!text);
    p.classList.toggle('ok', !isError && !!text);
  }

  function apiMessage(e) {
    if (e.name === 'AbortError') return 'kebun did not answer within ' + REQUEST_TIMEOUT_MS / 1000 + ' s.';
    return e.message;
  }

  function recPath(path) {
    return '/rec/' + String(path).split('/').map(kb.seg).join('/');
  }

  function videoFacts(v) {
    if (!v) return null;
    let s = v.codec || 'video';
    if (v.width && v.height) s += ' ' + v.width + '×' + v.height;
    if (v.fps) s += ' · ' + Math.round(v.fps * 100) / 100 + ' fps';
    return s;
  }

  function audioFacts(a) {
    if (!a) return null;
    let s = a.codec || 'audio';
    if (a.sample_rate) s += ' ' + a.sample_rate / 1000 + ' kHz';
    if (a.channels) s += a.channels === 1 ? ' mono' : a.channels === 2 ? ' stereo' : ' ' + a.channels + ' ch';
    return s;
  }

  function fact(label, value) {
    return el('li', {}, label ? label + ' ' : '', el('b', { text: value }));
  }

  /* ---------------------------------------------------------- destinations */

  const STATE_WORDS = { live: 'live', connecting: 'connecting', retrying: 'retrying', failed: 'failed', refused: 'refused', idle: 'idle' };

  class DestLine {
    constructor(card, id) {
      this.card = card;
      this.id = id;
      this.line = el('div', { class: 'dest-line' });
      this.url = el('code', { class: 'dest-url' });
      this.err = el('p', { class: 'dest-err' });
      this.remove = el('button', { type: 'button', class: 'small danger', onclick: () => this.onRemove() }, 'Remove');
      this.root = el('li', { class: 'dest' }, this.line, this.url, this.err, this.remove);
      this.root.dataset.id = id;
    }

    update(d) {
      this.d = d;
      const state = STATE_WORDS[d.state] ? d.state : 'idle';
      this.root.className = 'dest ' + state;
      this.root.dataset.state = state;
      const name = d.name || d.id;
      const stats = [];
      if (state === 'live') {
        stats.push('for ' + kb.clock(kb.since(d.since)), kb.bitrate(d.bitrate));
      }
      if (d.reconnects) stats.push(d.reconnects + (d.reconnects === 1 ? ' reconnect' : ' reconnects'));
      if (d.drops) stats.push(d.drops + ' dropped');
      if (d.source === 'api') stats.push('added here');
      fill(this.line,
        el('span', { class: 'dest-name', text: name }),
        el('span', { class: 'dest-state', text: STATE_WORDS[state] }),
        stats.length ? el('span', { class: 'dest-stats', text: stats.join(' · ') }) : null);
      this.url.textContent = d.url || '';
      if (d.last_error) {
        const when = d.last_error_at ? ' (' + kb.timeOfDay(d.last_error_at) + ', ' + kb.ago(d.last_error_at) + ')' : '';
        this.err.textContent = (state === 'live' || state === 'idle' ? 'Last error' : 'Error') + when + ': ' + d.last_error;
        this.err.hidden = false;
      } else {
        this.err.hidden = true;
      }
      this.remove.setAttribute('aria-label', 'Remove destination ' + name);
    }

    async onRemove() {
      const name = this.d.name || this.id;
      const fromConfig = this.d.source === 'config';
      const q = 'Stop sending ' + this.card.name + ' to ' + name + '?' +
        (fromConfig ? '\n\nIt comes from the config file: it comes back at the next reload or restart ' +
          'unless its push line is removed.' : '');
      if (!window.confirm(q)) return;
      this.remove.disabled = true;
      try {
        await api('/api/v1/streams/' + kb.seg(this.card.name) + '/destinations/' + kb.seg(this.id), { method: 'DELETE' });
        this.card.message('Removed ' + name + '.');
        poll();
      } catch (e) {
        this.card.message('Could not remove ' + name + ': ' + apiMessage(e), true);
        if (e.status === 401) askForToken();
      } finally {
        this.remove.disabled = false;
      }
    }
  }

  /* ------------------------------------------------------------ add form */

  function addForm(card) {
    const uid = 'f' + Math.random().toString(36).slice(2, 8);
    const preset = el('select', { id: uid + '-preset', name: 'preset' },
      PRESETS.map((p) => el('option', { value: p.id, text: p.label })));
    const presetHint = el('p', { class: 'hint', id: uid + '-preset-hint' });
    const url = el('input', {
      id: uid + '-url', name: 'url', type: 'text', inputmode: 'url', autocomplete: 'off', spellcheck: 'false',
      placeholder: 'rtmp://live.example.com/app', 'aria-describedby': uid + '-url-hint',
    });
    const urlBox = el('div', { class: 'wide' },
      el('label', { for: uid + '-url', text: 'Server URL' }), url,
      el('p', { class: 'hint', id: uid + '-url-hint',
        text: 'rtmp:// or rtmps://, without the key. Or paste the full URL with the key and leave the key empty.' }));
    const key = el('input', {
      id: uid + '-key', name: 'key', type: 'password', autocomplete: 'off', spellcheck: 'false',
      autocapitalize: 'off', 'aria-describedby': uid + '-preset-hint',
    });
    const label = el('input', {
      id: uid + '-label', name: 'label', type: 'text', autocomplete: 'off', spellcheck: 'false', autocapitalize: 'off',
      maxlength: '40', placeholder: 'e.g. tiktok', 'aria-describedby': uid + '-label-hint',
    });
    const submit = el('button', { type: 'submit', class: 'primary' }, 'Add destination');
    const msg = el('p', { class: 'msg', role: 'alert' });
    const form = el('form', { novalidate: true, 'aria-label': 'Add a destination to ' + card.name },
      el('div', {}, el('label', { for: uid + '-preset', text: 'Platform' }), preset, presetHint),
      el('div', {}, el('label', { for: uid + '-key', text: 'Stream key' }), key),
      urlBox,
      el('div', {}, el('label', { for: uid + '-label', text: 'Label (optional)' }), label,
        el('p', { class: 'hint', id: uid + '-label-hint', text: 'Letters, digits, . _ -; shown instead of the host.' })),
      el('div', { class: 'buttons wide' }, submit),
      el('div', { class: 'wide' }, msg));

    function onPreset() {
      const p = PRESETS.find((x) => x.id === preset.value);
      presetHint.textContent = p.hint;
      urlBox.hidden = p.id !== 'custom';
    }
    preset.addEventListener('change', onPreset);
    onPreset();

    /* The push line, or an error message. Never echoes the key. */
    function pushLine() {
      const k = key.value.trim();
      const l = label.value.trim();
      if (/\s/.test(k)) return { error: 'The stream key contains a space; paste it again.' };
      if (l && !LABEL_RE.test(l)) return { error: 'The label may only hold letters, digits, dots, dashes and underscores.' };
      let line;
      if (preset.value === 'custom') {
        const u = url.value.trim();
        if (!/^rtmps?:\/\/\S+$/.test(u)) return { error: 'The server URL must start with rtmp:// or rtmps:// and hold no spaces.' };
        line = k ? u.replace(/\/+$/, '') + '/' + k : u;
      } else {
        if (!k) return { error: 'Paste the stream key the platform gave you.' };
        line = preset.value + ':' + k;
      }
      return { line: l ? line + ' name=' + l : line };
    }

    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const p = pushLine();
      if (p.error) {
        say(msg, p.error, true);
        return;
      }
      submit.disabled = true;
      say(msg, 'Adding…');
      try {
        const d = await api('/api/v1/streams/' + kb.seg(card.name) + '/destinations', {
          method: 'POST', body: { push: p.line },
        });
        key.value = '';
        label.value = '';
        if (preset.value === 'custom') url.value = '';
        say(msg, 'Added ' + (d && (d.name || d.id) || 'the destination') + ' (' + (d && d.url || '') + ').');
        poll();
      } catch (e) {
        say(msg, 'Not added: ' + apiMessage(e), true);
        if (e.status === 401) askForToken();
      } finally {
        submit.disabled = false;
      }
    });

    return el('details', { class: 'add' }, el('summary', {}, 'Add a destination'), form);
  }

  /* ------------------------------------------------------------ stream card */

  class Card {
    constructor(name) {
      this.name = name;
      this.dests = new Map();
      this.thumbSrc = '';
      this.thumbFailedAt = 0;
      this.player = null;
      const hid = 's-' + Math.random().toString(36).slice(2, 8);

      this.img = el('img', { alt: 'Picture of ' + name, hidden: true, decoding: 'async' });
      this.img.addEventListener('error', () => {
        this.img.hidden = true;
        this.placeholder.hidden = false;
        this.thumbFailedAt = Date.now();
      });
      this.img.addEventListener('load', () => {
        this.img.hidden = !!this.player;
        this.placeholder.hidden = true;
      });
      this.placeholder = el('p', { class: 'placeholder' });
      this.media = el('div', { class: 'media' }, this.img, this.placeholder);

      this.badge = el('span', { class: 'badge' });
      this.facts = el('ul', { class: 'facts' });
      this.msg = el('p', { class: 'msg', role: 'status' });
      this.previewBtn = el('button', { type: 'button', onclick: () => this.togglePreview() }, 'Preview');
      this.kickBtn = el('button', { type: 'button', class: 'danger', onclick: () => this.kick() }, 'Kick publisher');
      this.watch = el('a', { class: 'button', href: '/watch/' + kb.seg(name) }, 'Watch page');
      this.destList = el('ul', { class: 'dests', 'aria-label': 'Destinations of ' + name });

      this.root = el('section', { class: 'stream', 'aria-labelledby': hid },
        this.media,
        el('div', { class: 'stream-body' },
          el('div', { class: 'stream-head' }, el('h2', { id: hid, text: name }), this.badge),
          this.facts,
          el('div', { class: 'actions' }, this.previewBtn, this.watch,
            el('a', { class: 'button', href: '/replay/' + kb.seg(name) }, 'Replays'), this.kickBtn),
          this.msg,
          el('h3', {}, 'Destinations'),
          this.destList,
          addForm(this)));
      this.root.dataset.stream = name;
    }

    message(text, isError) {
      say(this.msg, text, isError);
    }

    update(s) {
      this.s = s;
      const state = ['live', 'grace', 'idle'].includes(s.state) ? s.state : 'idle';
      this.root.dataset.state = state;
      this.badge.className = 'badge ' + state;
      this.badge.textContent = state;
      this.badge.title = state === 'grace' ? 'The phone left; the broadcast continues if it comes back soon' : '';

      const f = [];
      if (state === 'live') {
        f.push(fact('Up', kb.clock(kb.since(s.since))), fact('In', kb.bitrate(s.bitrate_in)),
          fact('', (s.players || 0) + (s.players === 1 ? ' player' : ' players')));
        const v = videoFacts(s.video), a = audioFacts(s.audio);
        if (v) f.push(fact('', v));
        if (a) f.push(fact('', a));
        if (s.publisher && s.publisher.address) f.push(fact('From', s.publisher.address));
      } else if (state === 'grace') {
        f.push(fact('Phone gone for', kb.clock(kb.since(s.since))),
          el('li', {}, 'the broadcast goes on if it comes back'));
      } else {
        f.push(el('li', {}, s.since ? 'No broadcast since ' + kb.dateTime(s.since) : 'No broadcast yet'));
      }
      const r = s.recording;
      if (r && r.state === 'recording') {
        f.push(fact('Recording', r.segments + ' segments, ' + kb.bytes(r.bytes)));
      } else if (r && r.state === 'waiting') {
        f.push(fact('Recording', 'waiting for the first frames'));
      } else if (r && r.state === 'failed') {
        f.push(el('li', { class: 'dest-err' }, 'Recording failed: ' + (r.last_error || 'unknown error')));
      }
      fill(this.facts, f);

      this.kickBtn.disabled = !s.publisher;
      this.previewBtn.disabled = state === 'idle' && !this.player;
      this.updateThumb(s);
      if (this.player && state === 'idle') this.stopPreview('The broadcast ended.');

      this.updateDests(s.destinations || []);
    }

    updateThumb(s) {
      const r = s.recording;
      const src = r && r.path && s.state !== 'idle' ? recPath(r.path) + '/thumb.jpg' : '';
      if (!src) {
        this.thumbSrc = '';
        this.img.hidden = true;
        this.img.removeAttribute('src');
        this.placeholder.hidden = !!this.player;
        this.placeholder.textContent = s.state === 'idle' ? 'No broadcast' : 'No picture (not recorded)';
        return;
      }
      /* A thumbnail appears with the recording's first keyframe: until it
       * does, ask again every 10 s. */
      if (src !== this.thumbSrc || (this.thumbFailedAt && Date.now() - this.thumbFailedAt > 10000)) {
        this.thumbFailedAt = 0;
        this.placeholder.textContent = 'No picture yet';
        this.img.src = src === this.thumbSrc ? src + '?t=' + Date.now() : src;
        this.thumbSrc = src;
      }
    }

    updateDests(list) {
      const seen = new Set();
      list.forEach((d, i) => {
        seen.add(d.id);
        let line = this.dests.get(d.id);
        if (!line) {
          line = new DestLine(this, d.id);
          this.dests.set(d.id, line);
        }
        line.update(d);
        if (this.destList.children[i] !== line.root) this.destList.insertBefore(line.root, this.destList.children[i] || null);
      });
      for (const [id, line] of this.dests) {
        if (!seen.has(id)) {
          line.root.remove();
          this.dests.delete(id);
        }
      }
      let none = this.destList.querySelector('.none');
      if (!list.length && !none) this.destList.append(el('li', { class: 'none' }, 'No destinations: the stream is not rebroadcast.'));
      if (list.length && none) none.remove();
    }

    async togglePreview() {
      if (this.player) {
        this.stopPreview('');
        return;
      }
      if (!this.s || this.s.state === 'idle') {
        this.message('Nothing to preview: nobody is broadcasting on ' + this.name + '.', true);
        return;
      }
      this.previewBtn.disabled = true;
      try {
        await kb.loadScript(kb.MPEGTS);
      } catch (e) {
        this.previewBtn.disabled = false;
        this.message('The player did not load: ' + e.message, true);
        return;
      }
      this.previewBtn.disabled = false;
      if (!kb.flvSupported()) {
        this.message('This browser cannot play HTTP-FLV; use the watch page instead.', true);
        return;
      }
      const video = el('video', { muted: true, playsinline: true, controls: true, 'aria-label': 'Preview of ' + this.name });
      video.muted = true;
      this.video = video;
      this.img.hidden = true;
      this.placeholder.hidden = true;
      this.media.prepend(video);
      /* global mpegts */
      this.player = kb.flvPlayer(video, (this.s && this.s.flv) || '/live/' + kb.seg(this.name) + '.flv');
      this.player.on(mpegts.Events.ERROR, (type, detail) => this.stopPreview('Preview stopped: ' + type + ' (' + detail + ').', true));
      this.player.on(mpegts.Events.LOADING_COMPLETE, () => this.stopPreview('The broadcast ended.'));
      video.play().catch(() => {});
      this.previewBtn.textContent = 'Stop preview';
      this.previewBtn.setAttribute('aria-pressed', 'true');
      this.message('');
    }

    stopPreview(why, isError) {
      if (this.player) {
        this.player.destroy();
        this.player = null;
      }
      if (this.video) {
        this.video.remove();
        this.video = null;
      }
      this.previewBtn.textContent = 'Preview';
      this.previewBtn.removeAttribute('aria-pressed');
      if (this.thumbSrc && !this.thumbFailedAt) this.img.hidden = false;
      else this.placeholder.hidden = false;
      if (why) this.message(why, isError);
    }

    async kick() {
      const who = this.s && this.s.publisher ? ' (' + this.s.publisher.address + ')' : '';
      if (!window.confirm('Disconnect the phone publishing ' + this.name + who + '?\n\nIf its key was stolen, ' +
        'change the key in the config and reload, or it can publish again.')) return;
      this.kickBtn.disabled = true;
      try {
        const r = await api('/api/v1/streams/' + kb.seg(this.name) + '/kick', { method: 'POST' });
        this.message('Disconnected ' + (r.kicked || 'the publisher') + '.');
        poll();
      } catch (e) {
        this.message('Could not kick: ' + apiMessage(e), true);
        if (e.status === 401) askForToken();
        this.kickBtn.disabled = false;
      }
    }

    destroy() {
      this.stopPreview('');
      this.root.remove();
    }
  }

  /* ---------------------------------------------------------------- render */

  function render(streams) {
    streamsEl.removeAttribute('aria-busy');
    const loading = document.getElementById('loading');
    if (loading) loading.remove();
    const seen = new Set();
    streams.forEach((s, i) => {
      seen.add(s.name);
      let card = cards.get(s.name);
      if (!card) {
        card = new Card(s.name);
        cards.set(s.name, card);
      }
      card.update(s);
      if (streamsEl.children[i] !== card.root) streamsEl.insertBefore(card.root, streamsEl.children[i] || null);
    });
    for (const [name, card] of cards) {
      if (!seen.has(name)) {
        card.destroy();
        cards.delete(name);
      }
    }
    let empty = document.getElementById('empty');
    if (!streams.length && !empty) {
      streamsEl.append(el('p', { id: 'empty', class: 'status' },
        'No streams are configured: add a [stream NAME] section with a key to the config and reload kebun.'));
    } else if (streams.length && empty) {
      empty.remove();
    }
  }

  /* --------------------------------------------------------------- polling */

  function showFailure(e) {
    clearInterval(ticker);
    const draw = () => {
      const left = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));
      fill(banner, apiMessage(e) + ' Retrying in ' + left + ' s.',
        el('button', { type: 'button', class: 'small', onclick: () => poll() }, 'Retry now'));
    };
    banner.className = 'banner error';
    streamsEl.classList.add('stale');
    draw();
    ticker = setInterval(draw, 1000);
    if (e.status === 401 && !kb.token()) askForToken();
  }

  function clearFailure() {
    clearInterval(ticker);
    ticker = null;
    banner.className = 'banner';
    banner.replaceChildren();
    streamsEl.classList.remove('stale');
  }

  async function poll() {
    clearTimeout(timer);
    timer = null;
    if (polling) return; // the running poll schedules the next one
    if (document.hidden) return; // resumed by visibilitychange
    polling = true;
    const ctl = new AbortController();
    const abort = setTimeout(() => ctl.abort(), REQUEST_TIMEOUT_MS);
    let next = POLL_MS;
    try {
      const data = await api('/api/v1/streams', { signal: ctl.signal });
      if (!Array.isArray(data.streams)) throw new kb.ApiError(200, 'kebun answered without a list of streams.');
      failures = 0;
      clearFailure();
      render(data.streams);
    } catch (e) {
      failures++;
      next = Math.min(POLL_MS * 2 ** failures, BACKOFF_MAX_MS);
      retryAt = Date.now() + next;
      showFailure(e);
    } finally {
      clearTimeout(abort);
      polling = false;
    }
    if (!document.hidden) timer = setTimeout(poll, next);
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && !timer) poll();
  });

  kb.markNav();
  showTokenState();
  poll();
})();
