/* The buyers' replay pages, routed on the path:
 *   /replay             every stream's recordings, newest first, by day
 *   /replay/STREAM      one stream's recordings
 *   /replay/STREAM/ID   one recording: player, MP4 download, link to share
 * A finished recording plays its faststart recording.mp4 (the browser
 * seeks with Range requests); one without an MP4 yet plays its HLS
 * playlist, natively on Safari, through hls.js elsewhere. */
'use strict';

(() => {
  const { el, fill, api } = kb;
  const main = document.getElementById('main');
  const status = document.getElementById('status');
  const parts = kb.pathParts();
  const add = (...kids) => kb.append(main, kids);

  function setStatus(text, isError, retry) {
    fill(status, text || '', retry ? ' ' : null, retry ? el('button', { type: 'button', class: 'small', onclick: retry }, 'Try again') : null);
    status.classList.toggle('error', !!isError);
  }

  /* A same-origin path from the API, or the fallback. */
  function local(u, fallback) {
    return typeof u === 'string' && /^\/(?!\/)/.test(u) ? u : fallback;
  }

  function recUrl(stream, id, file) {
    return '/rec/' + kb.seg(stream) + '/' + kb.seg(id) + '/' + file;
  }

  function pageUrl(stream, id) {
    return '/replay/' + kb.seg(stream) + '/' + kb.seg(id);
  }

  function loadError(e, what) {
    if (e.status === 0) return 'The server cannot be reached. Check your connection.';
    return 'Could not load the ' + what + ': ' + e.message;
  }

  function dayLabel(iso) {
    const d = new Date(Date.parse(iso));
    const today = new Date();
    const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (d.toDateString() === today.toDateString()) return 'Today';
    if (d.toDateString() === yesterday.toDateString()) return 'Yesterday';
    return d.toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric' });
  }

  /* ------------------------------------------------------------------ list */

  function card(r, oneStream) {
    const thumb = local(r.urls && r.urls.thumb, null);
    const badge = r.live ? el('span', { class: 'badge live' }, 'live')
      : r.status === 'interrupted' ? el('span', { class: 'badge grace', title: 'The broadcast was cut off' }, 'cut off')
        : r.status === 'failed' ? el('span', { class: 'badge' }, 'failed') : null;
    const title = oneStream ? kb.timeOfDay(r.start) : r.stream;
    const when = oneStream ? (r.live ? 'Recording now' : kb.clock(r.duration))
      : kb.timeOfDay(r.start) + (r.live ? ' · recording now' : '');
    return el('li', {},
      el('a', { class: 'card', href: local(r.urls && r.urls.page, pageUrl(r.stream, r.id)) },
        el('div', { class: 'thumb' },
          thumb ? el('img', { src: thumb, alt: '', loading: 'lazy', decoding: 'async', width: 320, height: 180 }) : null,
          badge,
          r.live ? null : el('span', { class: 'dur' }, kb.clock(r.duration))),
        el('div', { class: 'card-text' },
          el('div', { class: 'card-title' }, title),
          el('div', { class: 'card-when', title: kb.dateTime(r.start) }, when))));
  }

  async function showList(stream) {
    document.title = (stream ? stream + ' · ' : '') + 'replays';
    const head = stream
      ? [el('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' }, el('a', { href: '/replay' }, 'All replays')),
        el('div', { class: 'title-row' }, el('h1', {}, 'Replays of ' + stream),
          el('a', { href: '/watch/' + kb.seg(stream) }, 'Live now?'))]
      : [el('h1', {}, 'Replays'), el('p', { class: 'sub' }, 'Broadcasts recorded here, newest first.')];
    main.prepend(...head);
    setStatus('Loading…');
    let list;
    try {
      const data = await api('/public/v1/recordings' + (stream ? '?stream=' + encodeURIComponent(stream) : ''));
      list = Array.isArray(data.recordings) ? data.recordings : [];
    } catch (e) {
      setStatus(loadError(e, 'recordings'), true, () => location.reload());
      return;
    }
    list = list.filter((r) => r && r.stream && r.id && r.start);
    list.sort((a, b) => Date.parse(b.start) - Date.parse(a.start));
    if (!list.length) {
      setStatus(stream ? 'No recordings of ' + stream + ' yet.' : 'No recordings yet.');
      return;
    }
    setStatus('');
    const days = new Map();
    for (const r of list) {
      const label = dayLabel(r.start);
      if (!days.has(label)) days.set(label, []);
      days.get(label).push(r);
    }
    for (const [label, rs] of days) {
      add(el('section', { class: 'day' }, el('h2', {}, label),
        el('ul', { class: 'grid' }, rs.map((r) => card(r, !!stream)))));
    }
  }

  /* ------------------------------------------------------------------- one */

  async function copy(text, input) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch (e) {
      /* No clipboard API outside https and localhost: select and copy. */
      input.focus();
      input.select();
      try {
        return document.execCommand('copy');
      } catch (e2) {
        return false;
      }
    }
  }

  async function showOne(stream, id) {
    document.title = stream + ' · replay';
    main.prepend(el('nav', { class: 'crumbs', 'aria-label': 'Breadcrumb' },
      el('a', { href: '/replay' }, 'All replays'), ' › ',
      el('a', { href: '/replay/' + kb.seg(stream) }, stream)));
    setStatus('Loading…');
    let r;
    try {
      r = await api('/public/v1/recordings/' + kb.seg(stream) + '/' + kb.seg(id));
    } catch (e) {
      if (e.status === 404) setStatus('This recording does not exist (it may have been deleted).', true);
      else setStatus(loadError(e, 'recording'), true, () => location.reload());
      return;
    }
    setStatus('');
    const urls = r.urls || {};
    const mp4 = local(urls.mp4, null);
    const playlist = local(urls.playlist, recUrl(stream, id, 'index.m3u8'));
    const thumb = local(urls.thumb, null);
    document.title = stream + ' · ' + kb.dateTime(r.start);

    const notes = [kb.dateTime(r.start)];
    if (!r.live && Number.isFinite(r.duration)) notes.push(kb.clock(r.duration));
    const video = el('video', {
      controls: true, playsinline: true, preload: 'metadata', poster: thumb,
      'aria-label': 'Replay of ' + stream + ', ' + kb.dateTime(r.start),
    });
    const box = el('div', { class: 'player' }, video);
    const playMsg = el('p', { class: 'status', role: 'status' });
    add(
      el('div', { class: 'title-row' }, el('h1', {}, stream),
        r.live ? el('span', { class: 'badge live' }, 'recording now') : null),
      el('p', { class: 'sub' }, notes.join(' · ')),
      r.status === 'interrupted' ? el('p', { class: 'sub' }, 'The broadcast was cut off; this is what was recorded.') : null,
      box, playMsg);
    kb.fitPlayer(box, video);

    video.addEventListener('error', () => {
      const err = video.error;
      playMsg.textContent = 'The video could not be played' + (err && err.message ? ' (' + err.message + ')' : '') + '.';
      playMsg.classList.add('error');
    });
    if (mp4) {
      video.src = mp4;
    } else {
      try {
        await kb.hlsPlay(video, playlist, (why) => {
          playMsg.textContent = 'Playback failed (' + why + ').';
          playMsg.classList.add('error');
        }, true);
      } catch (e) {
        playMsg.textContent = 'This browser cannot play this recording: ' + e.message + '.';
        playMsg.classList.add('error');
      }
    }

    const link = location.origin + location.pathname;
    const linkInput = el('input', { type: 'text', readonly: true, value: link, id: 'share-link', 'aria-label': 'Link to this replay' });
    const shareMsg = el('span', { class: 'msg', role: 'status' });
    const copyBtn = el('button', { type: 'button' }, 'Copy link');
    copyBtn.addEventListener('click', async () => {
      const ok = await copy(link, linkInput);
      shareMsg.textContent = ok ? 'Link copied.' : 'Select the link and copy it.';
      shareMsg.className = 'msg ' + (ok ? 'ok' : 'error');
    });
    const buttons = [];
    if (mp4) {
      const size = r.bytes ? ' (' + kb.bytes(r.bytes) + ')' : '';
      buttons.push(el('a', { class: 'button primary', href: mp4, download: stream + '-' + id + '.mp4' }, 'Download MP4' + size));
    }
    buttons.push(copyBtn);
    if (navigator.share) {
      buttons.push(el('button', {
        type: 'button',
        onclick: () => navigator.share({ title: stream + ' · ' + kb.dateTime(r.start), url: link }).catch(() => {}),
      }, 'Share…'));
    }
    if (r.live) buttons.push(el('a', { class: 'button', href: '/watch/' + kb.seg(stream) }, 'Watch live'));
    add(el('div', { class: 'share' }, el('div', { class: 'row' }, buttons), linkInput), shareMsg);
    if (!mp4) {
      add(el('p', { class: 'sub' }, r.live ? 'The MP4 download appears when the broadcast has ended.'
        : r.export_pending ? 'The MP4 download is being made; it appears shortly.' : 'This recording has no MP4 download.'));
    }
  }

  if (parts.length >= 3) showOne(parts[1], parts[2]);
  else showList(parts[1] || '');
})();
