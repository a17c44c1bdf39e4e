// Review queue: filtered list of inspections (default: unreviewed defects, newest first or
// highest score first; camera, time, min A′, track and km filters) with the server's count of
// everything they match, the selected frame with its heatmap overlay (and the colour legend in
// A′), the model's reconstruction beside it, a zoom on one crop, crop boxes, score vs threshold,
// a note, and the confirm / false-alarm decision, all reachable from the keyboard; a bulk
// review of everything the filters match (behind a confirmation that states the count, with an
// undo), and deep links (#/review/<id>) that open exactly that inspection.

import { escapeHtml as esc, fmtAgo, fmtPosition, fmtReviewState, fmtScore, fmtTime, fromDatetimeLocal, toDatetimeLocal, parseTime, frameNote, noteTag, scoreRelation } from '../format.js';
import { DEFAULT_FILTERS, bulkBody, sameFilters, describeSelection, describeUndo, filtersToQuery, queueAppended, queueLoaded, queueMissing, queueMove, queuePinned, queueSelect, queueSelected, queueUpsert, queueWithFilters, scoreBar } from '../state.js';
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

/** The list's header: the server's count of everything the filters match, and how many are shown. */
function describeList(q) {
  if (!Number.isFinite(q.total)) return '';
  const order = q.filters.sort === 'score' ? 'highest score first' : 'newest first';
  const shown = q.items.length < q.total ? ` · ${q.items.length} shown` : '';
  return `${describeSelection(q.filters, q.total)} · ${order}${shown}`;
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
  const bulkFalse = document.getElementById('bulk-false-alarm');
  const bulkConfirm = document.getElementById('bulk-confirm');
  const bulkUndo = document.getElementById('bulk-undo');
  const bulkDialog = document.getElementById('bulk-dialog');
  let p = prefs();
  // The id a deep link is opening (fetched when not listed).
  let linking = null;
  // This session's last bulk review, until undone: { id, count, state }.
  let lastBatch = null;
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
    setQueue((q) => (q.loading ? q : { ...q, loading: true }));
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
    if (q.nextCursor == null || q.loading) return;
    const seq = loadSeq;
    setQueue((x) => ({ ...x, loading: true }));
    try {
      const page = await api.inspections(filtersToQuery(q.filters, { limit: PAGE, cursor: q.nextCursor }));
      if (seq !== loadSeq) return;
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
      sort: fd.get('sort') || 'newest',
      min_score: String(fd.get('min_score') ?? '').trim(),
      track_id: String(fd.get('track_id') ?? '').trim(),
      from_km: String(fd.get('from_km') ?? '').trim(),
      to_km: String(fd.get('to_km') ?? '').trim(),
    };
  }

  function writeForm(f) {
    form.elements.camera.value = f.camera ?? '';
    form.elements.verdict.value = f.verdict ?? '';
    form.elements.review.value = f.review ?? '';
    form.elements.since.value = f.since ? toDatetimeLocal(parseTime(f.since)) : '';
    form.elements.until.value = f.until ? toDatetimeLocal(parseTime(f.until)) : '';
    form.elements.sort.value = f.sort || 'newest';
    form.elements.min_score.value = f.min_score ?? '';
    form.elements.track_id.value = f.track_id ?? '';
    form.elements.from_km.value = f.from_km ?? '';
    form.elements.to_km.value = f.to_km ?? '';
  }

  form.addEventListener('change', (e) => {
    // A field that fires `change` again (on blur after an Enter) must not reload the list.
    const next = readForm();
    if (!sameFilters(next, store.get().queue.filters)) setFilters(next);
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
  bulkFalse.addEventListener('click', () => openBulk('false_alarm'));
  bulkConfirm.addEventListener('click', () => openBulk('confirmed'));
  bulkUndo.addEventListener('click', () => undoBulk());

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

  function optionHtml(i, q, state, linked = false) {
    const sel = i.id === q.selectedId;
    const thumb = i.image_url ?? i.heatmap_url;
    const tag = noteTag(i);
    const chip = tag
      ? `<span class="chip note-tag ${i.verdict === 'defect' ? 'defect' : 'normal'}" data-role="note-tag" title="${esc(i.note)}">${esc(tag)}</span>`
      : `<span class="chip ${i.verdict === 'defect' ? 'defect' : 'normal'}">${fmtScore(i.A_norm)}</span>`;
    return `<div class="queue-item${linked ? ' linked' : ''}" role="option" id="q-${i.id}" data-id="${i.id}" aria-selected="${sel}"${linked ? ' data-linked="true"' : ''}>
      ${thumb ? `<img src="${esc(thumb)}" alt="" loading="lazy">` : '<span class="thumb-empty" aria-hidden="true"></span>'}
      <span class="qi-top"><span>#${i.id} · ${esc(i.camera)}</span>${chip}</span>
      <span class="qi-meta">${esc(fmtTime(i.capture_time ?? i.received_at, state.now))} · ${esc(fmtPosition(i.track_id, i.position_m))}</span>
      <span class="qi-meta">${linked ? '<strong>Opened by link</strong> · not in this list · ' : ''}${esc(fmtReviewState(i.review))}</span>
    </div>`;
  }

  function renderList(state) {
    const q = state.queue;
    const pinned = q.pinned ? optionHtml(q.pinned, q, state, true) : '';
    if (!q.loaded && q.loading) {
      list.innerHTML = `${pinned}<div class="queue-empty">Loading…</div>`;
    } else if (q.error) {
      list.innerHTML = `${pinned}<div class="queue-empty error">Could not load: ${esc(q.error)}</div>`;
    } else if (!q.items.length) {
      list.innerHTML = `${pinned}<div class="queue-empty">${q.filters.review === 'unreviewed' && q.filters.verdict === 'defect' ? 'Nothing to review. New defects appear here live.' : 'No inspection matches these filters.'}</div>`;
    } else {
      list.innerHTML = pinned + q.items.map((i) => optionHtml(i, q, state)).join('');
    }
    const listed = q.selectedId != null && document.getElementById(`q-${q.selectedId}`);
    if (listed) list.setAttribute('aria-activedescendant', `q-${q.selectedId}`);
    else list.removeAttribute('aria-activedescendant');
    list.setAttribute('aria-label', `Inspections to review, ${q.filters.sort === 'score' ? 'highest score first' : 'newest first'}`);
    more.hidden = q.nextCursor == null;
    more.disabled = q.loading;
    more.textContent = q.filters.sort === 'score' ? 'Load more' : 'Load older';
    summary.textContent = q.loaded ? describeList(q) : '';
    summary.dataset.count = Number.isFinite(q.total) ? String(q.total) : '';
    renderBulkBar(q);
    scrollSelectedIntoView(state);
  }

  const maxBulk = () => (Number.isInteger(catalogue.max_bulk) && catalogue.max_bulk > 0 ? catalogue.max_bulk : 1000);

  function renderBulkBar(q) {
    const n = q.loaded && Number.isFinite(q.total) ? q.total : null;
    const label = document.getElementById('bulk-bar-label');
    const over = n != null && n > maxBulk();
    label.textContent = n == null ? 'All matching:' : over ? `All ${n} matching (at most ${maxBulk()} at once: narrow the filters):` : `All ${n} matching:`;
    // While the list reloads the buttons stay usable: the dialog counts for itself.
    for (const b of [bulkFalse, bulkConfirm]) {
      b.disabled = n === 0 || over || bulkDialog.open || (!q.loaded && !q.loading);
    }
    bulkUndo.hidden = !lastBatch;
    if (lastBatch) bulkUndo.textContent = `Undo bulk action (${lastBatch.count} ${lastBatch.state === 'confirmed' ? 'confirmed' : 'false alarms'})`;
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
      const q = state.queue;
      let text = q.items.length ? 'Select an inspection.' : 'No inspection selected.';
      if (q.missingId != null && q.selectedId === q.missingId) {
        text = `<strong>No inspection #${esc(q.missingId)}.</strong> The link names an inspection that does not exist (a mistyped id, or a database that was reset). The list on the left is not affected.`;
      } else if (linking != null && q.selectedId === linking) {
        text = `Opening inspection #${esc(linking)}…`;
      }
      detail.innerHTML = `<div class="detail-empty" id="detail-empty" role="status">${text}</div>`;
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

  // ------------------------------------------------------------ bulk review and undo

  /**
   * "Select all matching": counts what the filters match now (and the newest id, so frames
   * arriving while the inspector reads are not swept in), states that exact number in a modal
   * confirmation, and reviews them all in one request; the server refuses (409) if the count
   * changed meanwhile. Then an Undo (toast and the bar's button) for this session's last one.
   */
  async function openBulk(reviewState) {
    if (bulkDialog.open) return;
    const { filters } = store.get().queue;
    const verb = reviewState === 'confirmed' ? 'Confirm' : 'Dismiss';
    bulkDialog.innerHTML = `<h2 id="bulk-h">${verb}: counting…</h2>`;
    bulkDialog.showModal();
    let page;
    try {
      page = await api.inspections(filtersToQuery({ ...filters, sort: 'newest' }, { limit: 1 }));
    } catch (e) {
      showBulkMessage(`Could not count the matching inspections: ${e.message}`);
      return;
    }
    const n = page?.total ?? 0;
    const maxId = page?.items?.[0]?.id;
    if (!n || maxId == null) { showBulkMessage('No inspection matches these filters now: nothing to review.'); return; }
    if (n > maxBulk()) { showBulkMessage(`${describeSelection(filters, n)}: more than ${maxBulk()} at once. Narrow the filters (camera, min A′, track and km, time).`); return; }
    const what = reviewState === 'confirmed' ? 'confirmed defects' : 'false alarms';
    bulkDialog.innerHTML = `<form method="dialog" class="bulk-form" id="bulk-form">
        <h2 id="bulk-h">${reviewState === 'confirmed' ? `Confirm all ${n} as defects?` : `Dismiss all ${n} as false alarms?`}</h2>
        <p id="bulk-what" data-count="${n}">${esc(describeSelection(filters, n))} will be marked as <strong>${what}</strong>, each with its own review in its history. You can undo it afterwards.</p>
        ${reviewState === 'confirmed' ? `<div class="bulk-fields">
          <span class="field"><label for="bulk-type">Defect type</label><select id="bulk-type">${catalogue.types.map((t) => `<option value="${esc(t.id)}">${esc(t.label)}</option>`).join('')}</select></span>
          <span class="field"><label for="bulk-severity">Severity</label><select id="bulk-severity">${catalogue.severities.map((v) => `<option value="${esc(v)}" ${v === currentSeverity() ? 'selected' : ''}>${esc(v)}</option>`).join('')}</select></span>
        </div>` : ''}
        <label for="bulk-note">Note (kept with every review)</label>
        <textarea id="bulk-note" rows="2" placeholder="${reviewState === 'confirmed' ? 'e.g. clips missing along the whole stretch' : 'e.g. dirty lens on cam-02 until 10:40'}"></textarea>
        <p class="error" id="bulk-error" role="alert"></p>
        <div class="bulk-actions">
          <button type="button" class="btn ${reviewState === 'confirmed' ? 'danger' : 'ok'}" id="bulk-go">${reviewState === 'confirmed' ? `Confirm ${n}` : `Mark ${n} as false alarm`}</button>
          <button type="button" class="btn" id="bulk-cancel">Cancel</button>
        </div>
      </form>`;
    bulkDialog.querySelector('#bulk-cancel').addEventListener('click', () => bulkDialog.close());
    bulkDialog.querySelector('#bulk-go').addEventListener('click', () => runBulk(reviewState, filters, n, maxId));
    bulkDialog.querySelector('#bulk-cancel').focus();
  }

  function showBulkMessage(text) {
    bulkDialog.innerHTML = `<h2 id="bulk-h">Bulk review</h2><p id="bulk-what">${esc(text)}</p><div class="bulk-actions"><button type="button" class="btn" id="bulk-cancel">Close</button></div>`;
    bulkDialog.querySelector('#bulk-cancel').addEventListener('click', () => bulkDialog.close());
    bulkDialog.querySelector('#bulk-cancel').focus();
  }

  async function runBulk(reviewState, filters, n, maxId) {
    const go = bulkDialog.querySelector('#bulk-go');
    const err = bulkDialog.querySelector('#bulk-error');
    go.disabled = true;
    err.textContent = '';
    const body = bulkBody(filters, {
      state: reviewState,
      note: bulkDialog.querySelector('#bulk-note')?.value ?? '',
      expected: n,
      maxId,
      type: bulkDialog.querySelector('#bulk-type')?.value,
      severity: bulkDialog.querySelector('#bulk-severity')?.value,
    });
    try {
      const batch = await api.reviewBatch(body);
      bulkDialog.close();
      lastBatch = { id: batch.id, count: batch.count, state: batch.state };
      renderBulkBar(store.get().queue);
      await load();
      ctx.refreshCounts?.().catch(() => {});
      const text = `${batch.count} inspection${batch.count === 1 ? '' : 's'} marked ${batch.state === 'confirmed' ? 'confirmed defects' : 'false alarms'} (bulk review #${batch.id}).`;
      ctx.toast(text, 'info', { label: 'Undo', run: () => undoBulk(batch.id) });
      bulkUndo.focus();
    } catch (e) {
      go.disabled = false;
      err.textContent = e.code === 'count_changed'
        ? `${e.message} Close and start again to see the new count.`
        : `Nothing was reviewed: ${e.message}`;
    }
  }

  async function undoBulk(id = lastBatch?.id) {
    if (id == null) return;
    bulkUndo.disabled = true;
    try {
      const batch = await api.undoReviewBatch(id);
      ctx.toast(describeUndo(batch));
    } catch (e) {
      ctx.toast(`Undo of bulk review #${id} failed: ${e.message}`, 'error');
    } finally {
      if (lastBatch?.id === id) lastBatch = null;
      bulkUndo.disabled = false;
      renderBulkBar(store.get().queue);
      await load();
      ctx.refreshCounts?.().catch(() => {});
      list.focus();
    }
  }

  // ------------------------------------------------------------ deep links

  /** #/review/<id>: exactly that inspection, from the list when it is there, else fetched by id. */
  async function openLinked(arg) {
    const text = String(arg).trim();
    if (!/^\d{1,15}$/.test(text)) {
      setQueue((q) => queueMissing(q, text));
      return;
    }
    const id = Number(text);
    if (store.get().queue.items.some((i) => i.id === id)) {
      setQueue((q) => queueSelect(q, id));
      return;
    }
    linking = id;
    setQueue((q) => ({ ...q, selectedId: id, missingId: null }));
    try {
      const insp = await api.inspection(id);
      if (linking === id) setQueue((q) => queuePinned(q, insp));
    } catch (e) {
      if (linking !== id) return;
      if (e.status === 404 || e.status === 400) setQueue((q) => queueMissing(q, id));
      else ctx.toast(`Could not open inspection #${id}: ${e.message}`, 'error');
    } finally {
      if (linking === id) linking = null;
    }
  }

  function onKey(e) {
    if (root.hidden || e.defaultPrevented) return;
    // The zoom and bulk dialogs are modal: Escape closes them, nothing else acts behind them.
    if (detail.querySelector('#zoom-dialog')?.open || bulkDialog.open) return;
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
      if (arg != null) openLinked(arg);
      render(store.get(), null);
      if (!state.queue.loaded && !state.queue.loading) {
        setQueue((q) => ({ ...q, loading: true }));
        load();
      }
    },
  };
}
