// Calibration: per camera the current min/max/threshold and where it comes from, the server's
// threshold proposal from reviewed frames (best F1, or a false-alarm-rate target), its effect
// (current vs proposed), a what-if for any typed threshold (computed here over the very frames
// the proposal counted), Apply (admin: sends the exact value, never a rounded one), Clear of an
// applied threshold (admin), and the audit of every threshold change.

import { escapeHtml as esc, fmtPercent, fmtScore, fmtTime } from '../format.js';
import { applyRequest, compareEffects, computeEffect, exactThreshold, missedWords, parseThreshold, reviewedFromProposal } from '../calibration.js';

function fmtMetric(v, kind) {
  if (v == null || !Number.isFinite(v)) return '–';
  return kind === 'ratio' ? fmtPercent(v) : String(v);
}

function fmtDelta(row) {
  if (row.delta == null) return '';
  if (row.verdict === 'same') return '=';
  const sign = row.delta > 0 ? '+' : '−';
  const abs = Math.abs(row.delta);
  return row.kind === 'ratio' ? `${sign}${(abs * 100).toFixed(1)} pt` : `${sign}${abs}`;
}

/** The file name part of a calibration source path (the full path is in the tooltip). */
function shortPath(p) {
  if (!p) return '–';
  const i = p.lastIndexOf('/calibration/');
  return i >= 0 ? p.slice(i + 1) : p;
}

/** Where a camera's calibration comes from, in words (docs/scoring.md, the order of sources). */
const ORIGIN_LABEL = Object.freeze({
  applied: 'applied threshold',
  config: "camera's config file",
  camera_file: 'camera file',
  default: 'model default',
});

const ACTION_LABEL = Object.freeze({ apply: 'applied', clear: 'cleared', reload: 'reload', start: 'start' });

export function createCalibrationView(ctx) {
  const { api, store } = ctx;
  const root = document.getElementById('view-calibration');
  const listEl = document.getElementById('calib-list');
  const cards = new Map();

  function buildCard(cam) {
    const el = document.createElement('article');
    el.className = 'card calib-card';
    el.dataset.camera = cam.id;
    const k = `c-${cam.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
    el.setAttribute('aria-labelledby', `${k}-h`);
    el.innerHTML = `
      <header><h2 id="${k}-h">${esc(cam.id)}</h2><span class="muted">${esc(cam.name ?? '')}</span></header>
      <dl class="calib-current" data-role="current"></dl>
      <div class="calib-controls">
        <div class="field"><label for="${k}-method">Method</label>
          <select id="${k}-method" data-role="method"><option value="best_f1">best F1</option><option value="false_alarm_rate">false-alarm-rate target</option></select></div>
        <div class="field" data-role="target-field" hidden><label for="${k}-target">Target false-alarm rate</label>
          <input id="${k}-target" data-role="target" type="number" min="0" max="1" step="0.01" value="0.05"></div>
        <button type="button" class="btn small" data-role="get">Get proposal</button>
      </div>
      <div data-role="proposal" aria-live="polite"><p class="muted">Loading proposal…</p></div>
      <div class="apply-row">
        <div class="field"><label for="${k}-try">Threshold to try${ctx.isAdmin() ? ' / apply' : ''}</label>
          <input id="${k}-try" data-role="try" type="number" min="0" step="any" inputmode="decimal"></div>
        <p class="muted" data-role="whatif" aria-live="polite"></p>
        <p class="error" data-role="whatif-missed" aria-live="polite" hidden></p>
        <button type="button" class="btn primary" data-role="apply" data-admin ${ctx.isAdmin() ? '' : 'hidden'}>Apply threshold</button>
        <button type="button" class="btn small" data-role="clear" hidden>Clear applied threshold</button>
      </div>
      <div data-role="audit"></div>`;
    const r = (name) => el.querySelector(`[data-role="${name}"]`);
    const card = { el, r, cam, reviewed: null, proposal: null };
    r('method').addEventListener('change', () => {
      r('target-field').hidden = r('method').value !== 'false_alarm_rate';
      loadProposal(card);
    });
    r('target').addEventListener('change', () => loadProposal(card));
    r('get').addEventListener('click', () => loadProposal(card));
    r('try').addEventListener('input', () => whatIf(card));
    r('apply').addEventListener('click', () => apply(card));
    r('clear').addEventListener('click', () => clear(card));
    return card;
  }

  function renderCurrent(card) {
    const c = card.cam.calibration ?? {};
    const origin = ORIGIN_LABEL[c.origin] ?? c.origin ?? '';
    const source = c.origin === 'applied' ? c.source : `${origin}: ${shortPath(c.source)}`;
    card.r('current').innerHTML = `
      <dt>min</dt><dd>${fmtScore(c.min, 4)}</dd>
      <dt>max</dt><dd>${fmtScore(c.max, 4)}</dd>
      <dt>threshold</dt><dd data-role="current-threshold" data-exact="${esc(exactThreshold(c.threshold))}" title="${esc(exactThreshold(c.threshold))}">${fmtScore(c.threshold, 4)}</dd>
      <dt>source</dt><dd class="source" data-role="source" data-origin="${esc(c.origin ?? '')}" title="${esc(c.source ?? '')}">${esc(source ?? '–')}</dd>`;
    card.r('clear').hidden = !(ctx.isAdmin() && c.origin === 'applied');
  }

  async function loadAudit(card) {
    try {
      const res = await api.calibrationAudit({ camera: card.cam.id, limit: 10 });
      const items = res?.items ?? [];
      if (!items.length) {
        card.r('audit').innerHTML = '<p class="muted">No threshold change recorded for this camera yet.</p>';
        return;
      }
      const fmtT = (t) => (typeof t === 'number' ? exactThreshold(t) : '–');
      card.r('audit').innerHTML = `
        <div data-role="audit-list">
          <p class="muted proposal-msg">Threshold changes (newest first)</p>
          <ul style="margin: .2rem 0 0; padding-left: 1.1rem; font-size: .85rem; overflow-wrap: anywhere">${items.map((e) => `
            <li data-audit-id="${esc(e.id)}" data-action="${esc(e.action)}"><span title="${esc(e.at)}">${esc(fmtTime(e.at))}</span> · <strong data-role="actor">${esc(e.actor)}</strong> ${esc(ACTION_LABEL[e.action] ?? e.action)} <span data-role="change">${esc(fmtT(e.old_threshold))} → ${esc(fmtT(e.new_threshold))}</span>
              <br><span class="muted">${esc(shortPath(e.new_source))} · ${esc(e.reason)}</span></li>`).join('')}
          </ul>
        </div>`;
    } catch (e) {
      card.r('audit').innerHTML = `<p class="error">Could not read the threshold changes: ${esc(e.message)}</p>`;
    }
  }

  async function loadProposal(card) {
    const method = card.r('method').value;
    const params = { method };
    if (method === 'false_alarm_rate') params.target_far = card.r('target').value || '0.05';
    card.r('proposal').setAttribute('aria-busy', 'true');
    loadAudit(card);
    try {
      const proposal = await api.proposal(card.cam.id, params);
      card.proposal = proposal;
      // The frames the proposal counted (this model version, A′ under the calibration in
      // force): the what-if below counts exactly those.
      card.reviewed = reviewedFromProposal(proposal);
      renderProposal(card);
      // Prefilled with the exact value: Apply sends what the proposal says, not a rounding.
      const t = proposal?.proposed?.threshold ?? proposal?.current?.threshold ?? card.cam.calibration?.threshold;
      if (Number.isFinite(t)) card.r('try').value = exactThreshold(t);
      whatIf(card);
    } catch (e) {
      card.r('proposal').innerHTML = `<p class="error">Could not get a proposal: ${esc(e.message)}</p>`;
    } finally {
      card.r('proposal').removeAttribute('aria-busy');
    }
  }

  function renderProposal(card) {
    const p = card.proposal;
    const rc = p.reviewed ?? {};
    const model = p.model ? ` under ${esc(p.model.name)} ${esc(p.model.version)}` : '';
    const missed = missedWords(p.missed_confirmed, rc.confirmed ?? 0);
    const head = `<p class="proposal-msg">Reviewed${model}: <strong>${rc.confirmed ?? 0}</strong> confirmed defect${rc.confirmed === 1 ? '' : 's'}, <strong>${rc.false_alarm ?? 0}</strong> false alarm${rc.false_alarm === 1 ? '' : 's'}${p.proposed ? '' : ` (a proposal needs ${p.min_reviews_per_class ?? 1} of each)`}.
      ${p.proposed ? `Proposed threshold <strong data-role="proposed-threshold">${esc(exactThreshold(p.proposed.threshold))}</strong> (current ${esc(exactThreshold(p.current?.threshold))}, ${esc(p.method === 'false_alarm_rate' ? 'false-alarm-rate target' : 'best F1')}).` : ''}</p>
      ${missed ? `<p class="error" data-role="proposal-missed">${esc(missed)}</p>` : ''}
      ${p.message ? `<p class="muted proposal-msg" data-role="proposal-message">${esc(p.message)}</p>` : ''}`;
    if (!p.effect?.current || !((rc.confirmed ?? 0) + (rc.false_alarm ?? 0))) {
      card.r('proposal').innerHTML = head;
      return;
    }
    const rows = compareEffects(p.effect.current, p.effect.proposed);
    card.r('proposal').innerHTML = `${head}
      <table class="effect" data-role="effect">
        <caption class="muted" style="text-align:left">Effect on the reviewed frames</caption>
        <thead><tr><th scope="col">Metric</th><th scope="col">Current ${fmtScore(p.current?.threshold)}</th><th scope="col">Proposed ${p.proposed ? fmtScore(p.proposed.threshold) : ''}</th><th scope="col">Change</th></tr></thead>
        <tbody>${rows.map((r) => `<tr><th scope="row">${esc(r.label)}</th><td>${fmtMetric(r.current, r.kind)}</td><td>${fmtMetric(r.proposed, r.kind)}</td><td class="${r.verdict ?? ''}">${esc(fmtDelta(r))}</td></tr>`).join('')}</tbody>
      </table>`;
  }

  function whatIf(card) {
    const out = card.r('whatif');
    const missedOut = card.r('whatif-missed');
    missedOut.hidden = true;
    missedOut.textContent = '';
    const t = parseThreshold(card.r('try').value);
    const applyBtn = card.r('apply');
    applyBtn.disabled = t == null;
    if (t == null) {
      out.textContent = card.r('try').value ? 'Enter a threshold ≥ 0.' : '';
      return;
    }
    // The exact value, as Apply sends it.
    applyBtn.textContent = `Apply threshold ${exactThreshold(t)} to ${card.cam.id}`;
    if (!card.reviewed?.length) {
      out.textContent = 'No reviewed frame of this model version yet: nothing to compare with.';
      return;
    }
    const e = computeEffect(card.reviewed, t);
    out.textContent = `At ${exactThreshold(t)}: catches ${e.tp} of ${e.tp + e.fn} confirmed defects (recall ${fmtMetric(e.recall, 'ratio')}), ${e.fp} of ${e.fp + e.tn} false alarms still flagged (precision ${fmtMetric(e.precision, 'ratio')}).`;
    const missed = missedWords(e.fn, e.tp + e.fn);
    if (missed) {
      missedOut.textContent = missed;
      missedOut.hidden = false;
    }
  }

  async function apply(card) {
    const body = applyRequest(card.r('try').value, card.proposal);
    if (body == null || !ctx.isAdmin()) return;
    const btn = card.r('apply');
    btn.disabled = true;
    try {
      const cal = await api.applyCalibration(card.cam.id, body.threshold, body.reason);
      ctx.toast(`${card.cam.id}: threshold ${exactThreshold(cal?.threshold ?? body.threshold)} applied; it takes effect for the next frame and stays until it is cleared.`);
      await ctx.refreshCameras();
      await loadProposal(card);
    } catch (e) {
      ctx.toast(`Applying the threshold failed: ${e.message}`, 'error');
    } finally {
      btn.disabled = false;
    }
  }

  async function clear(card) {
    if (!ctx.isAdmin()) return;
    const btn = card.r('clear');
    btn.disabled = true;
    try {
      const cal = await api.clearCalibration(card.cam.id);
      ctx.toast(`${card.cam.id}: applied threshold cleared; ${ORIGIN_LABEL[cal?.origin] ?? 'the calibration file'} (${exactThreshold(cal?.threshold)}) applies again.`);
      await ctx.refreshCameras();
      await loadProposal(card);
    } catch (e) {
      ctx.toast(`Clearing the threshold failed: ${e.message}`, 'error');
    } finally {
      btn.disabled = false;
    }
  }

  function sync(state) {
    const { order, byId } = state.cameras;
    for (const id of order) {
      let card = cards.get(id);
      if (!card) {
        card = buildCard(byId[id]);
        cards.set(id, card);
        listEl.appendChild(card.el);
      }
      card.cam = byId[id];
      renderCurrent(card);
    }
    if (!order.length) listEl.innerHTML = '<p class="muted">No camera configured.</p>';
  }

  return {
    root,
    update(state, prev) {
      if (root.hidden) return;
      // Counts change with every frame; only calibration changes matter here.
      const calKey = (s) => s.cameras.order.map((id) => JSON.stringify(s.cameras.byId[id].calibration)).join('|');
      if (!prev || state.cameras.order !== prev.cameras.order || calKey(state) !== calKey(prev)) sync(state);
    },
    show(state) {
      sync(state);
      for (const card of cards.values()) loadProposal(card);
    },
    setAdmin(isAdmin) {
      for (const card of cards.values()) {
        card.r('apply').hidden = !isAdmin;
        card.r('clear').hidden = !(isAdmin && card.cam.calibration?.origin === 'applied');
      }
    },
  };
}
