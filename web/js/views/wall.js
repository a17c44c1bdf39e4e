// Live wall: one tile per camera with the latest kept frame, verdict, score, frames/s, defect
// rate and a silent-camera warning. Tiles are built once and updated in place.

import { escapeHtml as esc, fmtAgo, fmtCount, fmtFps, fmtPercent, fmtScore, parseTime, fmtDuration, noteTag, scoreRelation } from '../format.js';
import { cameraFps, cameraDefectRate, isSilent, scoreBar } from '../state.js';

export function createWallView(ctx) {
  const root = document.getElementById('view-wall');
  const grid = document.getElementById('wall-grid');
  const summary = document.getElementById('wall-summary');
  const tiles = new Map();

  function buildTile(cam) {
    const el = document.createElement('article');
    el.className = 'tile';
    el.dataset.camera = cam.id;
    const hid = `tile-${cam.id}-h`;
    el.setAttribute('aria-labelledby', hid);
    el.innerHTML = `
      <div class="tile-head">
        <h2 id="${esc(hid)}">${esc(cam.id)}</h2>
        <span class="cam-name" title="${esc(cam.name ?? '')}">${esc(cam.name ?? '')}</span>
        <span class="chip state" data-field="state"></span>
      </div>
      <div class="tile-frame">
        <img data-field="img" alt="" hidden>
        <div class="noimg" data-field="noimg">No kept frame yet</div>
        <span class="chip" data-field="verdict" hidden></span>
        <span class="img-age" data-field="imgage" hidden></span>
      </div>
      <div class="silent-warning" data-field="silent" role="alert" hidden></div>
      <dl class="tile-stats">
        <div class="latest"><dt>Latest frame</dt><dd><span class="score-text" data-field="score">–</span>
          <div class="scorebar" data-field="bar" role="img" aria-label="no score yet"><div class="fill"></div><div class="thr"></div></div></dd></div>
        <div><dt>Frames/s</dt><dd data-field="fps">–</dd></div>
        <div><dt>Defect rate</dt><dd data-field="rate">–</dd></div>
        <div><dt>Frames</dt><dd data-field="frames">–</dd></div>
        <div><dt>Defects</dt><dd data-field="defects">–</dd></div>
      </dl>
      <div class="tile-foot"><a href="#/review" data-field="reviewlink">Review defects of ${esc(cam.id)}</a></div>`;
    const f = (name) => el.querySelector(`[data-field="${name}"]`);
    const t = { el, f: Object.fromEntries(['state', 'img', 'noimg', 'verdict', 'imgage', 'silent', 'score', 'bar', 'fps', 'rate', 'frames', 'defects', 'reviewlink'].map((n) => [n, f(n)])), shownImage: null, loading: null };
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
    const silent = isSilent(cam, now);
    const latest = cam.live.latest;
    t.el.classList.toggle('is-silent', silent);
    t.el.classList.toggle('no-image', !cam.live.latestImage && !t.imageInsp);
    t.el.classList.toggle('is-defect', !silent && latest?.verdict === 'defect');
    t.f.state.textContent = silent ? 'silent' : 'live';
    t.f.state.className = `chip state ${silent ? 'silent' : 'live'}`;
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
    summary.textContent = order.length
      ? `${order.length} camera${order.length === 1 ? '' : 's'} · ${fmtFps(fps)} in all · ${silent ? `${silent} silent` : 'none silent'}`
      : 'No camera configured.';
  }

  return {
    root,
    update(state, prev) {
      if (root.hidden) return;
      if (state.cameras !== prev?.cameras || state.now !== prev?.now || state.streamOpenedAt !== prev?.streamOpenedAt) update(state);
    },
    show(state) { update(state); },
  };
}
