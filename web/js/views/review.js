// Review queue: filtered list of inspections (default: unreviewed defects, newest first), the
// selected frame with its heatmap overlay (and the colour legend in A′), the model's
// reconstruction beside it, a zoom on one crop, crop boxes, score vs threshold, a note, and the
// confirm / false-alarm decision, all reachable from the keyboard.

import { escapeHtml as esc, fmtAgo, fmtPosition, fmtReviewState, fmtScore, fmtTime, fromDatetimeLocal, toDatetimeLocal, parseTime, frameNote, noteTag, scoreRelation } from '../format.js';
import { DEFAULT_FILTERS, filtersToQuery, queueAppended, queueLoaded, queueMove, queueSelect, queueSelected, queueUpsert, queueWithFilters, scoreBar } from '../state.js';
import { SHORTCUTS, isEditableTarget, shortcutFor } from '../keys.js';
import { PARTIAL_SLOT_LABEL, cropAt, cropView, framePoint, heatLegend, partialSlots, worstCrop, zoomFactor } from '../heatmap.js';
import { DEFAULT_CATALOGUE, confirmBody, nextSeverity, typeForKey, typeKey } from '../defects.js';

const PAGE = 50;

function prefs() {
  try {
    const p = JSON.parse(localStorage.getItem('railscope.heatmap') ?? '{}');
    return { on: p.on !== false, opacity: Number.isFinite(p.opacity) ? p.opacity : 60, boxes: p.boxes !== false, recon: p.recon === true };
  } catch {
    return { on: true, opacity: 60, boxes: true, recon: false };
  }
}

function describeFilters(f, n, more) {
  const count = `${n}${more ? '+' : ''}`;
  const verdict = f.verdict === 'defect' ? 'defect' : f.verdict === 'normal' ? 'normal frame' : 'inspection';
  const review = { unreviewed: 'unreviewed ', confirmed: 'confirmed ', false_alarm: 'false-alarm ', reviewed: 'reviewed ' }[f.review] ?? '';
  const cam = f.camera ? ` from ${f.camera}` : '';
  return `${count} ${review}${verdict}${n === 1 && !more ? '' : 's'}${cam}`;
}

export function createReviewView(ctx) {
  const { store, api } = ctx;
  const root = document.getElementById('view-review');
  const form = document.getElementById('review-filters');
  const list = document.getElementById('queue-list');
  const more = document.getElementById('queue-more');
  const detail = document.getElementById('review-detail');
  const summary = document.getElementById('queue-summary');
  const camSelect = document.getElementById('f-camera');
  let p = prefs();
  let shownId = null;
  let busy = false;
  let loadSeq = 0;
  // The defect catalogue (types, configured severities); the severity stays as last chosen.
  let catalogue = DEFAULT_CATALOGUE;
  let severity = null;
  let picking = false;
  api.catalogue?.().then((c) => {
    if (c?.types?.length && c?.severities?.length) { catalogue = c; severity = null; shownId = null; render(store.get(), null); }
  }).catch(() => { /* the defaults stay; a 401 returns to the login */ });
  const currentSeverity = () => (catalogue.severities.includes(severity) ? severity : catalogue.severities[0]);

  document.getElementById('shortcut-list').innerHTML = SHORTCUTS.map((s) => `<li>${s.keys.map((k) => `<kbd>${esc(k === 'ArrowDown' ? '↓' : k === 'ArrowUp' ? '↑' : k)}</kbd>`).join(' / ')} ${esc(s.label)}</li>`).join('');

  const setQueue = (fn) => store.set((st) => ({ queue: fn(st.queue) }));

  async function load() {
    const seq = ++loadSeq;
    const { filters } = store.get().queue;
    try {
      const page = await api.inspections(filtersToQuery(filters, { limit: PAGE }));
      if (seq !== loadSeq) return;
      setQueue((q) => queueLoaded(q, page));
    } catch (e) {
      if (seq !== loadSeq) return;
      setQueue((q) => ({ ...q, loading: false, error: e.message }));
    }
  }

  async function loadMore() {
    const q = store.get().queue;
    if (q.nextBeforeId == null || q.loading) return;
    setQueue((x) => ({ ...x, loading: true }));
    try {
      const page = await api.inspections(filtersToQuery(q.filters, { limit: PAGE, before_id: q.nextBeforeId }));
      setQueue((x) => queueAppended(x, page));
    } catch (e) {
      setQueue((x) => ({ ...x, loading: false, error: e.message }));
    }
  }

  function setFilters(filters) {
    store.set((st) => ({ queue: queueWithFilters(st.queue, filters) }));
    writeForm(store.get().queue.filters);
    load();
  }

  function readForm() {
    const fd = new FormData(form);
    return {
      camera: fd.get('camera') ?? '',
      verdict: fd.get('verdict') ?? '',
      review: fd.get('review') ?? '',
      since: fromDatetimeLocal(fd.get('since')),
      until: fromDatetimeLocal(fd.get('until')),
    };
  }

  function writeForm(f) {
    form.elements.camera.value = f.camera ?? '';
    form.elements.verdict.value = f.verdict ?? '';
    form.elements.review.value = f.review ?? '';
    form.elements.since.value = f.since ? toDatetimeLocal(parseTime(f.since)) : '';
    form.elements.until.value = f.until ? toDatetimeLocal(parseTime(f.until)) : '';
  }

  form.addEventListener('change', (e) => {
    setFilters(readForm());
    // A picked option is done: give the keyboard back to the queue so c/f/j/k work at once.
    if (e.target.tagName === 'SELECT') list.focus();
  });
  form.addEventListener('submit', (e) => e.preventDefault());
  form.addEventListener('reset', (e) => {
    e.preventDefault();
    setFilters({ ...DEFAULT_FILTERS });
  });
  more.addEventListener('click', loadMore);

  list.addEventListener('click', (e) => {
    const opt = e.target.closest('[role="option"]');
    if (opt) setQueue((q) => queueSelect(q, Number(opt.dataset.id)));
  });

  // ------------------------------------------------------------ rendering

  function renderCameras(state) {
    const ids = state.cameras.order;
    const cur = camSelect.value;
    const want = ['', ...ids].join('|');
    if (camSelect.dataset.ids !== want) {
      camSelect.innerHTML = `<option value="">all cameras</option>${ids.map((id) => `<option value="${esc(id)}">${esc(id)}</option>`).join('')}`;
      camSelect.dataset.ids = want;
      camSelect.value = state.queue.filters.camera || cur || '';
    }
  }

  function renderList(state) {
    const q = state.queue;
    if (!q.loaded && q.loading) {
      list.innerHTML = '<div class="queue-empty">Loading…</div>';
    } else if (q.error) {
      list.innerHTML = `<div class="queue-empty error">Could not load: ${esc(q.error)}</div>`;
    } else if (!q.items.length) {
      list.innerHTML = `<div class="queue-empty">${q.filters.review === 'unreviewed' && q.filters.verdict === 'defect' ? 'Nothing to review. New defects appear here live.' : 'No inspection matches these filters.'}</div>`;
    } else {
      list.innerHTML = q.items
        .map((i) => {
          const sel = i.id === q.selectedId;
          const thumb = i.image_url ?? i.heatmap_url;
          const tag = noteTag(i);
          const chip = tag
            ? `<span class="chip note-tag ${i.verdict === 'defect' ? 'defect' : 'normal'}" data-role="note-tag" title="${esc(i.note)}">${esc(tag)}</span>`
            : `<span class="chip ${i.verdict === 'defect' ? 'defect' : 'normal'}">${fmtScore(i.A_norm)}</span>`;
          return `<div class="queue-item" role="option" id="q-${i.id}" data-id="${i.id}" aria-selected="${sel}">
            ${thumb ? `<img src="${esc(thumb)}" alt="" loading="lazy">` : '<span class="thumb-empty" aria-hidden="true"></span>'}
            <span class="qi-top"><span>#${i.id} · ${esc(i.camera)}</span>${chip}</span>
            <span class="qi-meta">${esc(fmtTime(i.capture_time ?? i.received_at, state.now))} · ${esc(fmtPosition(i.track_id, i.position_m))}</span>
            <span class="qi-meta">${esc(fmtReviewState(i.review))}</span>
          </div>`;
        })
        .join('');
    }
    if (q.selectedId != null) list.setAttribute('aria-activedescendant', `q-${q.selectedId}`);
    else list.removeAttribute('aria-activedescendant');
    more.hidden = q.nextBeforeId == null;
    more.disabled = q.loading;
    summary.textContent = q.loaded ? describeFilters(q.filters, q.items.length, q.nextBeforeId != null) : '';
    summary.dataset.count = String(q.items.length);
    scrollSelectedIntoView(state);
  }

  function scrollSelectedIntoView(state) {
    // Scroll only the list (scrollIntoView would also scroll the page).
    const el = state.queue.selectedId != null && document.getElementById(`q-${state.queue.selectedId}`);
    if (!el) return;
    const top = el.offsetTop;
    const bottom = top + el.offsetHeight;
    if (top < list.scrollTop) list.scrollTop = top;
    else if (bottom > list.scrollTop + list.clientHeight) list.scrollTop = bottom - list.clientHeight;
  }

  function boxesSvg(item, w, h) {
    const crops = (item.crops ?? []).filter((c) => Array.isArray(c.box) && c.box.length === 4);
    let rects = crops.map((c) => `<rect class="${c.verdict === 'defect' ? 'defect' : 'normal'}" x="${c.box[0]}" y="${c.box[1]}" width="${c.box[2]}" height="${c.box[3]}"><title>crop A′ ${fmtScore(c.A_norm)} ${esc(c.verdict ?? '')}</title></rect>`);
    // A single crop covering the whole frame says nothing: leave it out.
    if (rects.length === 1 && crops[0].box[2] >= w && crops[0].box[3] >= h) rects = [];
    // Slots cut by the frame's edge: listed by the server, not scored (thin dashed, their own colour).
    const partial = partialSlots(item.partial_slots).map((b) => `<rect class="partial" data-role="partial-slot" x="${b[0]}" y="${b[1]}" width="${b[2]}" height="${b[3]}"><title>${esc(PARTIAL_SLOT_LABEL)}</title></rect>`);
    if (!rects.length && !partial.length) return '';
    return `<svg viewBox="0 0 ${w} ${h}" preserveAspectRatio="xMidYMid meet" aria-hidden="true" class="boxes">${rects.join('')}${partial.join('')}</svg>`;
  }

  /** The notice above the image of a frame judged without (or beyond) its crops' scores. */
  function noteHtml(item) {
    const n = frameNote(item.note);
    if (!n) return '';
    const alarm = item.verdict === 'defect';
    return `<div class="frame-note ${alarm ? 'alarm' : 'info'}" id="frame-note" role="note" data-kind="${n.kind}">
        <strong class="frame-note-head">${esc(n.headline)}</strong>
        ${n.reason ? `<span class="frame-note-reason">(reason: ${esc(n.reason)})</span>` : ''}
        ${(item.crops ?? []).length ? '' : `<span class="frame-note-text">No fastener crop was scored: this frame has no A′.</span>`}
      </div>`;
  }

  /** A line under the picture when the frame has partial slots: what the dashed outlines are. */
  function partialLegendHtml(item) {
    const n = partialSlots(item.partial_slots).length;
    if (!n) return '';
    return `<p class="partial-legend" id="partial-legend"><span class="partial-swatch" aria-hidden="true"></span> Dashed outline${n === 1 ? '' : 's'}: ${n} fastener slot${n === 1 ? '' : 's'} ${PARTIAL_SLOT_LABEL}.</p>`;
  }

  function legendHtml(item) {
    const l = heatLegend(item.threshold, item.A_norm);
    if (!l) return '';
    return `<figure class="heat-legend" id="heat-legend" aria-labelledby="heat-legend-cap">
      <figcaption id="heat-legend-cap"><strong>Heatmap colour: A′</strong> <span class="muted">the crop would score if its worst region looked like that spot</span></figcaption>
      <div class="legend-bar" style="background:${l.gradient}" aria-hidden="true">${l.frame ? `<span class="legend-mark" style="left:${l.frame.pct.toFixed(1)}%"></span>` : ''}</div>
      <div class="legend-ticks">${l.ticks.map((t) => `<span class="legend-tick ${t.key}" data-tick="${t.key}" style="left:${t.pct}%">${esc(t.label)}</span>`).join('')}</div>
      <p class="legend-note">Blue → green: A′ at or below the threshold (normal); yellow → red: over the threshold, red from 2 × threshold.${l.frame ? ` <span class="legend-frame">▲ ${esc(l.frame.label)}${l.frame.beyond ? ' (beyond the bar)' : ''}</span>` : ' <span class="legend-frame">This frame has no A′ (no crop scored).</span>'}</p>
    </figure>`;
  }

  function renderDetail(state) {
    const item = queueSelected(state.queue);
    if (!item) {
      shownId = null;
      detail.innerHTML = `<div class="detail-empty">${state.queue.items.length ? 'Select an inspection.' : 'No inspection selected.'}</div>`;
      return;
    }
    if (item.id === shownId) {
      updateReviewState(item);
      return;
    }
    const hadFocus = detail.contains(document.activeElement);
    shownId = item.id;
    const bar = scoreBar(item.A_norm, item.threshold);
    const rel = scoreRelation(item.A_norm, item.threshold);
    const nPartial = partialSlots(item.partial_slots).length;
    const frameSrc = item.image_url;
    const heatSrc = item.heatmap_url;
    const reconSrc = item.reconstruction_url;
    const canZoom = Boolean(frameSrc) && worstCrop(item.crops) >= 0;
    detail.innerHTML = `
      <div class="detail-head">
        <h2 id="detail-h">Inspection #${item.id}</h2>
        <span class="chip ${item.verdict === 'defect' ? 'defect' : 'normal'}">${esc(item.verdict)}</span>
        <span class="chip review" id="detail-review-state"></span>
      </div>
      ${noteHtml(item)}
      <div class="detail-body">
        <div class="viewer">
          <div class="stacks" id="stacks">
            <figure class="stack-fig">
              <div class="stack${canZoom ? ' zoomable' : ''}" id="stack">
                ${frameSrc ? `<img class="frame" id="detail-frame" src="${esc(frameSrc)}" alt="Frame ${item.id} from ${esc(item.camera)}">` : ''}
                ${heatSrc ? `<img class="heat" id="detail-heatmap" src="${esc(heatSrc)}" alt="Anomaly heatmap of frame ${item.id} (warm = over the threshold)">` : ''}
                ${!frameSrc && !heatSrc ? '<div class="no-image">The image of this frame was not kept.</div>' : ''}
              </div>
              <figcaption class="stack-cap">Frame${heatSrc ? ' + heatmap' : ''}</figcaption>
            </figure>
            ${reconSrc ? `<figure class="stack-fig" id="recon-fig" hidden>
              <div class="stack${canZoom ? ' zoomable' : ''}" id="stack-recon"><img class="frame" id="detail-recon" data-src="${esc(reconSrc)}" alt="The model's reconstruction of frame ${item.id}: how the fasteners would look if normal"></div>
              <figcaption class="stack-cap">Reconstruction</figcaption>
            </figure>` : ''}
          </div>
          <div class="viewer-controls">
            <span><input type="checkbox" id="heat-toggle" ${p.on ? 'checked' : ''} ${heatSrc ? '' : 'disabled'}> <label for="heat-toggle">Heatmap <kbd>h</kbd></label></span>
            <span><label for="heat-opacity">Opacity</label> <input type="range" id="heat-opacity" min="0" max="100" step="5" value="${p.opacity}" ${heatSrc ? '' : 'disabled'}> <output id="heat-opacity-out" for="heat-opacity">${p.opacity} %</output></span>
            <span><input type="checkbox" id="boxes-toggle" ${p.boxes ? 'checked' : ''}> <label for="boxes-toggle">Crop boxes${nPartial ? ' and cut slots' : ''}</label></span>
            <span><input type="checkbox" id="recon-toggle" ${p.recon ? 'checked' : ''} ${reconSrc ? '' : 'disabled'}> <label for="recon-toggle">Reconstruction beside <kbd>r</kbd></label></span>
            <button type="button" class="btn small" id="zoom-btn" ${canZoom ? '' : 'disabled'}>Zoom crop <kbd>z</kbd></button>
          </div>
          ${partialLegendHtml(item)}
          ${heatSrc ? legendHtml(item) : ''}
          <dialog class="zoom-dialog" id="zoom-dialog" aria-labelledby="zoom-h"></dialog>
        </div>
        <div class="facts">
          <div>
            <div class="score-text" id="detail-score">A′ <strong data-role="a-norm">${fmtScore(item.A_norm)}</strong> ${rel ? `${rel === '>' ? '&gt;' : '≤'} threshold` : `<span class="not-scored">not scored</span> · threshold`} ${fmtScore(item.threshold)} <span class="muted">(R ${fmtScore(item.R)}, L ${fmtScore(item.L)}, A ${fmtScore(item.A)})</span></div>
            <div class="scorebar ${bar.over ? 'over' : ''}${bar.scored ? '' : ' unscored'}" role="img" aria-label="${bar.scored ? `Normalized score ${fmtScore(item.A_norm)} against threshold ${fmtScore(item.threshold)}` : `Not scored; threshold ${fmtScore(item.threshold)}`}"><div class="fill" style="width:${bar.scorePct.toFixed(1)}%"></div><div class="thr" style="left:${bar.thresholdPct.toFixed(1)}%"></div></div>
          </div>
          <dl>
            <dt>Camera</dt><dd>${esc(item.camera)}${state.cameras.byId[item.camera]?.name ? ` · ${esc(state.cameras.byId[item.camera].name)}` : ''}</dd>
            <dt>Captured</dt><dd>${esc(fmtTime(item.capture_time ?? item.received_at, state.now))} <span class="muted">(${esc(fmtAgo(item.capture_time ?? item.received_at, state.now))})</span></dd>
            <dt>Track position</dt><dd>${esc(fmtPosition(item.track_id, item.position_m))}${Number.isFinite(item.position_m) ? ` <span class="muted">(${item.position_m.toFixed(1)} m)</span>` : ''}</dd>
            <dt>Speed</dt><dd>${Number.isFinite(item.speed_kmh) ? `${item.speed_kmh.toFixed(0)} km/h` : '–'}</dd>
            <dt>Frame id</dt><dd>${esc(item.frame_id ?? '–')}</dd>
            <dt>Fasteners</dt><dd>${(item.crops ?? []).length} scored, ${(item.crops ?? []).filter((c) => c.verdict === 'defect').length} flagged${nPartial ? `, ${nPartial} cut by the frame edge (not scored)` : ''}</dd>
            <dt>Model</dt><dd>${esc(item.model?.name ?? '–')} ${esc(item.model?.version ?? '')} · ${esc(item.provider ?? '')}</dd>
          </dl>
          <div>
            <label for="review-note">Note <kbd>n</kbd></label>
            <textarea id="review-note" rows="2" placeholder="e.g. clip missing on the field side">${esc(item.review?.note ?? '')}</textarea>
          </div>
          <fieldset class="defect-fields">
            <legend>Confirmed defect</legend>
            <span class="field"><label for="review-severity">Severity <kbd>s</kbd></label>
              <select id="review-severity">${catalogue.severities.map((v) => `<option value="${esc(v)}" ${v === currentSeverity() ? 'selected' : ''}>${esc(v)}</option>`).join('')}</select></span>
            <span class="field"><label for="review-side">Rail side</label>
              <select id="review-side"><option value="">–</option>${catalogue.rail_sides.map((v) => `<option value="${esc(v)}" ${item.review?.rail_side === v ? 'selected' : ''}>${esc(v)}</option>`).join('')}</select></span>
            <span class="field"><label for="review-sleeper">Sleeper no.</label>
              <input id="review-sleeper" type="number" min="0" step="1" inputmode="numeric" value="${Number.isInteger(item.review?.sleeper) ? item.review.sleeper : ''}"></span>
          </fieldset>
          <div class="review-actions">
            <button type="button" class="btn danger" id="btn-confirm" aria-expanded="false" aria-controls="type-picker">Confirm defect… <kbd>c</kbd></button>
            <button type="button" class="btn ok" id="btn-false-alarm">False alarm <kbd>f</kbd></button>
          </div>
          <div class="type-picker" id="type-picker" role="group" aria-labelledby="type-picker-h" hidden>
            <p id="type-picker-h"><strong>Defect type</strong> <span class="muted">— press its number (Esc cancels)</span></p>
            <div class="type-grid">${catalogue.types.map((t, k) => `<button type="button" class="btn small" data-type="${esc(t.id)}"><kbd>${typeKey(k) ?? ''}</kbd> ${esc(t.label)}</button>`).join('')}</div>
          </div>
          <p class="review-state muted" id="detail-review-by"></p>
        </div>
      </div>`;
    const stacks = [...detail.querySelectorAll('.stack')];
    const frame = detail.querySelector('#detail-frame') ?? detail.querySelector('#detail-heatmap');
    if (frame) {
      frame.addEventListener('load', () => {
        const w = frame.naturalWidth, h = frame.naturalHeight;
        if (!w || !h) return;
        for (const st of stacks) {
          st.style.aspectRatio = `${w} / ${h}`;
          st.classList.toggle('pixelated', w < 400);
          st.insertAdjacentHTML('beforeend', boxesSvg(item, w, h));
        }
        applyViewer();
      }, { once: true });
    }
    detail.querySelector('#heat-toggle').addEventListener('change', (e) => { p.on = e.target.checked; savePrefs(); applyViewer(); });
    detail.querySelector('#heat-opacity').addEventListener('input', (e) => { p.opacity = Number(e.target.value); savePrefs(); applyViewer(); });
    detail.querySelector('#boxes-toggle').addEventListener('change', (e) => { p.boxes = e.target.checked; savePrefs(); applyViewer(); });
    detail.querySelector('#recon-toggle').addEventListener('change', (e) => { p.recon = e.target.checked; savePrefs(); applyViewer(); });
    detail.querySelector('#zoom-btn').addEventListener('click', () => openZoom(item));
    for (const st of stacks) {
      if (!canZoom) break;
      st.addEventListener('click', (e) => {
        const img = st.querySelector('img.frame');
        if (!img?.naturalWidth) return;
        const pt = framePoint(img.getBoundingClientRect(), { width: img.naturalWidth, height: img.naturalHeight }, e.clientX, e.clientY);
        const k = pt ? cropAt(item.crops, pt.x, pt.y) : -1;
        if (k >= 0) openZoom(item, k);
      });
    }
    detail.querySelector('#btn-confirm').addEventListener('click', () => setPicking(!picking));
    detail.querySelector('#review-severity').addEventListener('change', (e) => { severity = e.target.value; });
    for (const b of detail.querySelectorAll('#type-picker [data-type]')) b.addEventListener('click', () => review('confirmed', b.dataset.type));
    picking = false;
    detail.querySelector('#btn-false-alarm').addEventListener('click', () => review('false_alarm'));
    applyViewer();
    updateReviewState(item);
    if (hadFocus) list.focus();
  }

  function updateReviewState(item) {
    const chip = detail.querySelector('#detail-review-state');
    if (chip) chip.textContent = fmtReviewState(item.review);
    const by = detail.querySelector('#detail-review-by');
    if (by) by.textContent = item.review ? `Reviewed by ${item.review.reviewer ?? '–'} ${fmtAgo(item.review.reviewed_at, Date.now())}. Deciding again overwrites it.` : '';
  }

  function savePrefs() {
    try { localStorage.setItem('railscope.heatmap', JSON.stringify(p)); } catch { /* private mode */ }
  }

  function applyViewer() {
    const reconFig = detail.querySelector('#recon-fig');
    if (reconFig) {
      const show = p.recon;
      reconFig.hidden = !show;
      detail.querySelector('#stacks')?.classList.toggle('two', show);
      const img = reconFig.querySelector('img');
      // Fetched only once shown.
      if (show && !img.getAttribute('src')) img.src = img.dataset.src;
      const rt = detail.querySelector('#recon-toggle');
      if (rt) rt.checked = show;
    }
    const heat = detail.querySelector('#detail-heatmap');
    const frame = detail.querySelector('#detail-frame');
    if (heat) {
      // Without the original frame, the heatmap is the only picture: keep it fully visible.
      heat.style.opacity = frame ? (p.on ? String(p.opacity / 100) : '0') : '1';
    }
    const out = detail.querySelector('#heat-opacity-out');
    if (out) out.textContent = `${p.opacity} %`;
    const t = detail.querySelector('#heat-toggle');
    if (t) t.checked = p.on;
    for (const boxes of detail.querySelectorAll('svg.boxes')) boxes.style.display = p.boxes ? '' : 'none';
  }

  // ------------------------------------------------------------ crop zoom

  /** Opens the zoom dialog on crop `k` (default: the worst) of `item`: frame, heatmap and reconstruction side by side at 3–4×. */
  function openZoom(item, k = worstCrop(item.crops)) {
    const dialog = detail.querySelector('#zoom-dialog');
    const frame = detail.querySelector('#detail-frame');
    if (!dialog || !frame?.naturalWidth || k < 0) return;
    const W = frame.naturalWidth, H = frame.naturalHeight;
    const sources = [
      { key: 'frame', label: 'Frame', src: item.image_url },
      { key: 'heatmap', label: 'Heatmap', src: item.heatmap_url },
      { key: 'reconstruction', label: 'Reconstruction', src: item.reconstruction_url },
    ].filter((x) => x.src);
    const crops = item.crops ?? [];
    const draw = (idx) => {
      const c = crops[idx];
      const zoom = zoomFactor(Math.min(W, c.box[2]), sources.length, Math.min(window.innerWidth, 1600) - 80);
      const v = cropView(c.box, W, H, zoom);
      dialog.querySelector('.zoom-panels').innerHTML = sources.map((x) => `<figure class="zoom-panel" data-kind="${x.key}">
          <div class="zoom-crop" style="width:${v.width}px;height:${v.height}px"><img src="${esc(x.src)}" alt="${esc(x.label)} of crop ${idx + 1}, ${zoom}× enlarged" style="width:${v.imgWidth}px;height:${v.imgHeight}px;left:${v.left}px;top:${v.top}px"></div>
          <figcaption>${esc(x.label)}</figcaption>
        </figure>`).join('');
      dialog.querySelector('#zoom-h').textContent = `Crop ${idx + 1} of ${crops.length} · #${item.id} · A′ ${fmtScore(c.A_norm)} (${c.verdict ?? '–'})`;
      dialog.querySelector('#zoom-factor').textContent = `${zoom}× enlarged, one screen pixel block per captured pixel.`;
    };
    dialog.innerHTML = `<div class="zoom-head">
        <h2 id="zoom-h"></h2>
        ${crops.length > 1 ? `<label for="zoom-crop">Crop</label> <select id="zoom-crop">${crops.map((c, i) => `<option value="${i}" ${i === k ? 'selected' : ''}>${i + 1}: A′ ${fmtScore(c.A_norm)} ${esc(c.verdict ?? '')}</option>`).join('')}</select>` : ''}
        <button type="button" class="btn small" id="zoom-close">Close <kbd>Esc</kbd></button>
      </div>
      <div class="zoom-panels"></div>
      <p class="muted" id="zoom-factor"></p>`;
    dialog.querySelector('#zoom-close').addEventListener('click', () => dialog.close());
    dialog.querySelector('#zoom-crop')?.addEventListener('change', (e) => draw(Number(e.target.value)));
    draw(k);
    dialog.showModal();
  }

  // ------------------------------------------------------------ actions

  /** Shows or hides the type picker (Confirm defect… / c); a digit then confirms. */
  function setPicking(on) {
    const picker = detail.querySelector('#type-picker');
    if (!picker) return;
    picking = on;
    picker.hidden = !on;
    detail.querySelector('#btn-confirm')?.setAttribute('aria-expanded', String(on));
  }

  async function review(state, type) {
    const item = queueSelected(store.get().queue);
    if (!item || busy) return;
    setPicking(false);
    const note = detail.querySelector('#review-note')?.value ?? '';
    const body = state === 'confirmed'
      ? confirmBody({ type, severity: currentSeverity(), railSide: detail.querySelector('#review-side')?.value, sleeper: detail.querySelector('#review-sleeper')?.value, note })
      : { state, note };
    busy = true;
    detail.querySelectorAll('.review-actions button').forEach((b) => { b.disabled = true; });
    try {
      const updated = await api.reviewWith(item.id, body);
      ctx.applyReviewed(updated ?? { ...item, review: body });
      const label = catalogue.types.find((t) => t.id === type)?.label ?? type;
      ctx.toast(`#${item.id} marked ${state === 'confirmed' ? `confirmed defect: ${label}, ${body.severity}` : 'false alarm'}`);
    } catch (e) {
      ctx.toast(`Review of #${item.id} failed: ${e.message}`, 'error');
    } finally {
      busy = false;
      detail.querySelectorAll('.review-actions button').forEach((b) => { b.disabled = false; });
    }
  }

  function onKey(e) {
    if (root.hidden || e.defaultPrevented) return;
    // The zoom dialog is modal: Escape closes it, nothing else acts behind it.
    if (detail.querySelector('#zoom-dialog')?.open) return;
    const t = e.target;
    // The type picker is open: a digit confirms with that type, Escape cancels.
    if (picking && !e.ctrlKey && !e.metaKey && !e.altKey) {
      const type = typeForKey(e.key, catalogue.types);
      if (type) { review('confirmed', type); e.preventDefault(); return; }
      if (e.key === 'Escape') { setPicking(false); list.focus(); e.preventDefault(); return; }
    }
    const action = shortcutFor({ key: e.key, ctrlKey: e.ctrlKey, metaKey: e.metaKey, altKey: e.altKey, editable: isEditableTarget({ tagName: t?.tagName, type: t?.type, isContentEditable: t?.isContentEditable }) });
    if (!action) return;
    switch (action) {
      case 'confirm': if (queueSelected(store.get().queue)) setPicking(!picking); break;
      case 'severity': {
        severity = nextSeverity(catalogue.severities, currentSeverity());
        const sel = detail.querySelector('#review-severity');
        if (sel) sel.value = severity;
        break;
      }
      case 'false_alarm': review('false_alarm'); break;
      case 'next': setQueue((q) => queueMove(q, 1)); break;
      case 'prev': setQueue((q) => queueMove(q, -1)); break;
      case 'note': detail.querySelector('#review-note')?.focus(); break;
      case 'toggle_heatmap': p.on = !p.on; savePrefs(); applyViewer(); break;
      case 'toggle_reconstruction':
        if (!detail.querySelector('#recon-fig')) return;
        p.recon = !p.recon; savePrefs(); applyViewer(); break;
      case 'zoom': {
        const item = queueSelected(store.get().queue);
        if (!item) return;
        openZoom(item);
        break;
      }
      case 'blur': t?.blur?.(); list.focus(); break;
      default: return;
    }
    e.preventDefault();
  }
  document.addEventListener('keydown', onKey);

  function render(state, prev) {
    renderCameras(state);
    if (!prev || state.queue !== prev.queue || state.cameras.order !== prev.cameras?.order) {
      renderList(state);
      renderDetail(state);
    }
  }

  return {
    root,
    load,
    setFilters,
    update(state, prev) {
      if (root.hidden) return;
      render(state, prev);
    },
    show(state, arg) {
      writeForm(state.queue.filters);
      if (arg != null && Number.isFinite(Number(arg))) setQueue((q) => queueSelect(q, Number(arg)));
      render(store.get(), null);
      if (!state.queue.loaded && !state.queue.loading) {
        setQueue((q) => ({ ...q, loading: true }));
        load();
      }
    },
  };
}
