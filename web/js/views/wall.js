// Live wall: the start-of-shift summary (what happened since a chosen time, GET /v1/summary)
// and one tile per camera with the latest kept frame, verdict, score, frames/s, defect rate,
// unreviewed defects, the track section and a silent-camera warning (none of which is claimed
// while the server itself is unreachable). Tiles are built once and updated in place.

import { escapeHtml as esc, fmtAgo, fmtCount, fmtFps, fmtPercent, fmtScore, fmtTime, parseTime, fmtDuration, noteTag, scoreRelation, toDatetimeLocal, fromDatetimeLocal } from '../format.js';
import { cameraAlerts, describeAlerts, describeRate, describeSeverities, describeTracks, rateDeparture, recentDefect, tileState } from '../shift.js';
import { cameraFps, cameraDefectRate, isSilent, scoreBar } from '../state.js';

export function createWallView(ctx) {
  const root = document.getElementById('view-wall');
  const grid = document.getElementById('wall-grid');
  const summary = document.getElementById('wall-summary');
  const shiftSinceText = document.getElementById('shift-since-text');
  const shiftSince = document.getElementById('shift-since');
  const shiftTotals = document.getElementById('shift-totals');
  const shiftBody = document.querySelector('#shift-table tbody');
  const alertsBox = document.getElementById('shift-alerts');
  const alertsStatus = document.getElementById('shift-alerts-status');
  const alertsList = document.getElementById('shift-alerts-list');
  const tiles = new Map();

  shiftSince.addEventListener('change', () => {
    const iso = fromDatetimeLocal(shiftSince.value);
    if (iso) ctx.setShiftSince(parseTime(iso));
  });
  document.getElementById('shift-last-visit').addEventListener('click', () => ctx.setShiftSince(null));

  function buildTile(cam) {
    const el = document.createElement('article');
    el.className = 'tile';
    el.dataset.camera = cam.id;
    const hid = `tile-${cam.id}-h`;
    el.setAttribute('aria-labelledby', hid);
    el.innerHTML = `
      <div class="tile-head">
        <h2 id="${esc(hid)}">${esc(cam.id)}</h2>
        <span class="cam-name" data-field="name">${esc(cam.name ?? '')}</span>
        <span class="chip state" data-field="state"></span>
      </div>
      <div class="tile-frame">
        <img data-field="img" alt="" hidden>
        <div class="noimg" data-field="noimg">No kept frame yet</div>
        <span class="chip" data-field="verdict" hidden></span>
        <span class="img-age" data-field="imgage" hidden></span>
      </div>
      <div class="silent-warning" data-field="silent" role="alert" hidden></div>
      <p class="tile-alerts" data-field="alerts" hidden></p>
      <dl class="tile-stats">
        <div class="latest"><dt>Latest frame</dt><dd><span class="score-text" data-field="score">–</span>
          <div class="scorebar" data-field="bar" role="img" aria-label="no score yet"><div class="fill"></div><div class="thr"></div></div></dd></div>
        <div><dt>Frames/s</dt><dd data-field="fps">–</dd></div>
        <div><dt>Defect rate</dt><dd data-field="rate">–</dd></div>
        <div><dt>Frames (all time)</dt><dd data-field="frames">–</dd></div>
        <div><dt>Defects (all time)</dt><dd data-field="defects">–</dd></div>
        <div><dt>Unreviewed defects</dt><dd data-field="unreviewed">–</dd></div>
        <div><dt data-field="sincelabel">Since …</dt><dd data-field="since">–</dd></div>
        <div class="wide"><dt>Track section since</dt><dd data-field="track">–</dd></div>
      </dl>
      <div class="tile-foot"><a href="#/review" data-field="reviewlink">Review defects of ${esc(cam.id)}</a></div>`;
    const f = (name) => el.querySelector(`[data-field="${name}"]`);
    const t = { el, f: Object.fromEntries(['name', 'state', 'img', 'noimg', 'verdict', 'imgage', 'silent', 'score', 'bar', 'fps', 'rate', 'frames', 'defects', 'unreviewed', 'sincelabel', 'since', 'track', 'reviewlink', 'alerts'].map((n) => [n, f(n)])), shownImage: null, loading: null };
    t.f.reviewlink.addEventListener('click', (e) => {
      e.preventDefault();
      ctx.openReview({ camera: cam.id });
    });
    return t;
  }

  function setImage(t, cam, insp) {
    if (!insp || t.shownImage === insp.id || t.loading === insp.id) return;
    // Load off-screen first, then swap: no flicker, and a failed load keeps the previous frame.
    t.loading = insp.id;
    const pre = new Image();
    pre.onload = () => {
      if (t.loading !== insp.id) return;
      t.loading = null;
      t.shownImage = insp.id;
      t.f.img.src = pre.src;
      t.f.img.alt = `Latest kept frame of ${cam.id}: inspection ${insp.id}, ${insp.verdict}`;
      t.f.img.dataset.inspection = String(insp.id);
      t.f.img.hidden = false;
      t.f.noimg.hidden = true;
      t.imageInsp = insp;
      // Paint its verdict and age now rather than at the next tick.
      const st = ctx.store.get();
      if (st.cameras.byId[cam.id]) updateTile(t, st.cameras.byId[cam.id], st);
    };
    pre.onerror = () => {
      if (t.loading === insp.id) t.loading = null;
    };
    pre.src = insp.image_url;
  }

  function updateTile(t, cam, state) {
    const now = state.now;
    // While the server itself cannot be reached nothing is known of a camera: not "silent".
    const tstate = tileState(isSilent(cam, now), state.serverDownSince);
    const silent = tstate === 'silent';
    const latest = cam.live.latest;
    t.el.classList.toggle('is-silent', silent);
    t.el.classList.toggle('is-unknown', tstate === 'unknown');
    t.el.classList.toggle('no-image', !cam.live.latestImage && !t.imageInsp);
    // The defect emphasis holds for a few minutes after the last defect (no flicker per frame).
    t.el.classList.toggle('is-defect', tstate === 'live' && recentDefect(cam.live.lastDefectAt, now));
    t.f.state.textContent = tstate === 'unknown' ? 'no data' : tstate;
    t.f.state.className = `chip state ${tstate}`;
    t.f.state.title = tstate === 'unknown' ? 'The server cannot be reached: this camera’s state is unknown.' : '';
    if ((cam.name ?? '') !== t.f.name.textContent) t.f.name.textContent = cam.name ?? '';
    if (silent) {
      const last = cam.live.lastArrival ?? parseTime(cam.last_frame_at);
      t.f.silent.textContent = Number.isFinite(last) && last > 0
        ? `Silent: no frame for ${fmtDuration(now - last)}`
        : 'Silent: this camera has not sent a frame';
      t.f.silent.hidden = false;
    } else {
      t.f.silent.hidden = true;
    }
    setImage(t, cam, cam.live.latestImage);
    const shown = t.imageInsp;
    if (shown) {
      t.f.verdict.hidden = false;
      t.f.verdict.textContent = shown.verdict;
      t.f.verdict.className = `chip ${shown.verdict === 'defect' ? 'defect' : 'normal'}`;
      t.f.imgage.hidden = false;
      const age = fmtAgo(shown.capture_time ?? shown.received_at, now);
      t.f.imgage.textContent = `kept frame #${shown.id} · ${age}`;
      t.f.imgage.title = latest && latest.id !== shown.id ? 'Newer frames were scored but their images were not kept (sampling).' : '';
    }
    if (latest) {
      const bar = scoreBar(latest.A_norm, latest.threshold);
      const rel = scoreRelation(latest.A_norm, latest.threshold);
      const tag = noteTag(latest);
      // A frame judged without a scored crop (no track, no fastener, every slot cut) shows its note's tag.
      const score = tag
        ? `<span class="note-tag-text" data-role="note-tag">${esc(tag)}</span> · threshold ${fmtScore(latest.threshold)}`
        : `A′ ${fmtScore(latest.A_norm)} ${rel === '>' ? '&gt;' : rel ?? '·'} ${fmtScore(latest.threshold)}`;
      t.f.score.innerHTML = `<span class="chip ${latest.verdict === 'defect' ? 'defect' : 'normal'}">${esc(latest.verdict)}</span> ${score} · #${latest.id} · ${esc(fmtAgo(latest.capture_time ?? latest.received_at, now))}`;
      t.f.score.title = latest.note ?? '';
      t.f.bar.classList.toggle('over', bar.over);
      t.f.bar.classList.toggle('unscored', !bar.scored);
      t.f.bar.querySelector('.fill').style.width = `${bar.scorePct}%`;
      t.f.bar.querySelector('.thr').style.left = `${bar.thresholdPct}%`;
      t.f.bar.setAttribute('aria-label', bar.scored
        ? `normalized score ${fmtScore(latest.A_norm)} against threshold ${fmtScore(latest.threshold)}`
        : `not scored${latest.note ? ` (${latest.note})` : ''}; threshold ${fmtScore(latest.threshold)}`);
    }
    t.f.fps.textContent = fmtFps(cameraFps(cam, now, state.streamOpenedAt));
    t.f.rate.textContent = fmtPercent(cameraDefectRate(cam));
    t.f.frames.textContent = fmtCount(cam.frames ?? 0);
    t.f.defects.textContent = fmtCount(cam.defects ?? 0);
    updateTileShift(t, cam, state);
    const al = cameraAlerts(state.alerts?.data, cam.id);
    const n = al.firing + al.pending;
    t.f.alerts.hidden = n === 0 || tstate === 'unknown';
    t.f.alerts.dataset.firing = String(al.firing);
    t.f.alerts.textContent = n === 0 ? ''
      : `${al.firing ? `${al.firing} alert${al.firing === 1 ? '' : 's'} firing` : `${al.pending} alert${al.pending === 1 ? '' : 's'} pending`}: ${al.names.join(', ')}`;
    t.f.alerts.classList.toggle('pending-only', al.firing === 0);
  }

  /** The tile's figures from the start-of-shift summary: unreviewed, since, track section. */
  function updateTileShift(t, cam, state) {
    const data = state.shift?.data;
    const s = data?.cameras?.find((c) => c.camera === cam.id);
    t.f.sincelabel.textContent = data ? `Defects since ${fmtTime(data.since, state.now)}` : 'Defects since …';
    if (!s) {
      for (const k of ['unreviewed', 'since', 'track']) t.f[k].textContent = '–';
      t.f.since.classList.remove('rate-high', 'rate-low');
      return;
    }
    t.f.unreviewed.textContent = fmtCount(s.unreviewed);
    t.f.unreviewed.classList.toggle('attention', s.unreviewed > 0);
    const dep = rateDeparture(s);
    t.f.since.textContent = `${fmtCount(s.defects)} · ${describeRate(s)}`;
    t.f.since.classList.toggle('rate-high', dep === 'high');
    t.f.since.classList.toggle('rate-low', dep === 'low');
    t.f.since.title = dep ? `The defect rate since ${fmtTime(data.since, state.now)} is ${dep === 'high' ? 'above' : 'below'} this camera’s normal (last 7 days).` : '';
    t.f.track.textContent = describeTracks(s.tracks);
  }

  let renderedShift = null;
  function updateShift(state) {
    const shift = state.shift ?? {};
    if (shift === renderedShift) return;
    renderedShift = shift;
    if (Number.isFinite(shift.since)) {
      shiftSinceText.textContent = fmtTime(new Date(shift.since).toISOString(), state.now);
      if (document.activeElement !== shiftSince) shiftSince.value = toDatetimeLocal(shift.since);
    }
    const data = shift.data;
    if (!data) {
      shiftTotals.textContent = shift.error ? `The summary could not be read: ${shift.error}` : 'Reading the summary…';
      shiftBody.replaceChildren();
      return;
    }
    const tot = data.totals;
    const sev = describeSeverities(tot.confirmed_by_severity);
    shiftTotals.textContent = `${fmtCount(tot.defects)} new defect${tot.defects === 1 ? '' : 's'} in ${fmtCount(tot.frames)} frames`
      + ` · ${fmtCount(tot.unreviewed_since)} of them unreviewed · ${fmtCount(tot.unreviewed)} unreviewed in all`
      + ` · confirmed: ${sev || 'none'}`;
    shiftTotals.dataset.defects = String(tot.defects);
    shiftBody.innerHTML = data.cameras.map((c) => {
      const dep = rateDeparture(c);
      const rateCls = dep ? ` class="rate-${dep}"` : '';
      const depText = dep === 'high' ? ' <span class="chip defect">above normal</span>' : dep === 'low' ? ' <span class="chip review">below normal</span>' : '';
      return `<tr data-camera="${esc(c.camera)}"><th scope="row">${esc(c.camera)} <span class="cam-name">${esc(c.name)}</span></th>`
        + `<td>${fmtCount(c.frames)}</td><td data-field="defects">${fmtCount(c.defects)}</td>`
        + `<td${rateCls} data-field="rate">${esc(describeRate(c))}${depText}</td>`
        + `<td data-field="unreviewed">${fmtCount(c.unreviewed)}${c.unreviewed_since ? ` (${fmtCount(c.unreviewed_since)} new)` : ''}</td>`
        + `<td>${esc(describeSeverities(c.confirmed_by_severity) || '–')}</td><td>${esc(describeTracks(c.tracks))}</td></tr>`;
    }).join('');
  }

  let renderedAlerts = null;
  function updateAlerts(state) {
    const alerts = state.alerts ?? {};
    if (alerts === renderedAlerts && state.cameras.order === renderedAlerts?.order) return;
    renderedAlerts = alerts;
    const { order, byId } = state.cameras;
    const d = describeAlerts(alerts.data, alerts.error, order);
    alertsBox.dataset.status = d.status;
    alertsStatus.textContent = d.text;
    alertsList.hidden = !d.groups.length;
    alertsList.innerHTML = d.groups.flatMap((g) => g.alerts.map((a) => {
      const where = g.camera == null ? 'service' : g.camera;
      const name = g.camera != null && byId[g.camera]?.name ? ` <span class="cam-name">${esc(byId[g.camera].name)}</span>` : '';
      const since = a.since ? ` · since ${esc(fmtTime(a.since, state.now))}` : '';
      const sev = a.severity ? ` · ${esc(a.severity)}` : '';
      return `<li data-alert="${esc(a.name)}" data-state="${esc(a.state)}"${g.camera != null ? ` data-camera="${esc(g.camera)}"` : ''}>`
        + `<span class="chip ${a.state === 'firing' ? 'defect' : 'review'}">${esc(a.state)}</span> `
        + `<strong>${esc(where)}</strong>${name} <span class="alert-name">${esc(a.name)}</span>${sev}${since}`
        + `${a.summary ? `<span class="alert-summary">${esc(a.summary)}</span>` : ''}</li>`;
    })).join('');
  }

  function update(state) {
    const { order, byId } = state.cameras;
    for (const id of order) {
      let t = tiles.get(id);
      if (!t) {
        t = buildTile(byId[id]);
        tiles.set(id, t);
      }
      updateTile(t, byId[id], state);
    }
    // Keep the DOM order equal to the camera order.
    order.forEach((id, i) => {
      const el = tiles.get(id).el;
      if (grid.children[i] !== el) grid.insertBefore(el, grid.children[i] ?? null);
    });
    for (const [id, t] of tiles) if (!byId[id]) { t.el.remove(); tiles.delete(id); }
    const silent = order.filter((id) => isSilent(byId[id], state.now)).length;
    const fps = order.reduce((a, id) => a + cameraFps(byId[id], state.now, state.streamOpenedAt), 0);
    summary.textContent = !order.length ? 'No camera configured.'
      : state.serverDownSince != null ? `${order.length} camera${order.length === 1 ? '' : 's'} · state unknown: the server cannot be reached`
        : `${order.length} camera${order.length === 1 ? '' : 's'} · ${fmtFps(fps)} in all · ${silent ? `${silent} silent` : 'none silent'}`;
    updateShift(state);
    updateAlerts(state);
  }

  return {
    root,
    update(state, prev) {
      if (root.hidden) return;
      if (state.cameras !== prev?.cameras || state.now !== prev?.now || state.streamOpenedAt !== prev?.streamOpenedAt
        || state.shift !== prev?.shift || state.alerts !== prev?.alerts || state.serverDownSince !== prev?.serverDownSince) update(state);
    },
    show(state) { update(state); },
  };
}
