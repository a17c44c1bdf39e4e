// Calibration: per camera the current min/max/threshold, the server's threshold proposal from
// reviewed frames (best F1, or a false-alarm-rate target), its effect (current vs proposed),
// a what-if for any typed threshold (computed here from the reviewed frames), and Apply (admin).

import { escapeHtml as esc, fmtPercent, fmtScore } from '../format.js';
import { compareEffects, computeEffect, parseThreshold } from '../calibration.js';

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
          <input id="${k}-try" data-role="try" type="number" min="0" step="0.001" inputmode="decimal"></div>
        <p class="muted" data-role="whatif" aria-live="polite"></p>
        <button type="button" class="btn primary" data-role="apply" data-admin ${ctx.isAdmin() ? '' : 'hidden'}>Apply threshold</button>
      </div>`;
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
    return card;
  }

  function renderCurrent(card) {
    const c = card.cam.calibration ?? {};
    card.r('current').innerHTML = `
      <dt>min</dt><dd>${fmtScore(c.min, 4)}</dd>
      <dt>max</dt><dd>${fmtScore(c.max, 4)}</dd>
      <dt>threshold</dt><dd data-role="current-threshold">${fmtScore(c.threshold, 4)}</dd>
      <dt>source</dt><dd class="source" title="${esc(c.source ?? '')}">${esc(shortPath(c.source))}</dd>`;
  }

  async function loadProposal(card) {
    const method = card.r('method').value;
    const params = { method };
    if (method === 'false_alarm_rate') params.target_far = card.r('target').value || '0.05';
    card.r('proposal').setAttribute('aria-busy', 'true');
    try {
      const [proposal, reviewed] = await Promise.all([
        api.proposal(card.cam.id, params),
        api.inspections({ camera: card.cam.id, review: 'reviewed', limit: 500 }),
      ]);
      card.proposal = proposal;
      card.reviewed = reviewed?.items ?? [];
      renderProposal(card);
      const t = proposal?.proposed?.threshold ?? proposal?.current?.threshold ?? card.cam.calibration?.threshold;
      if (Number.isFinite(t)) card.r('try').value = String(+t.toFixed(4));
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
    const head = `<p class="proposal-msg">Reviewed: <strong>${rc.confirmed ?? 0}</strong> confirmed defect${rc.confirmed === 1 ? '' : 's'}, <strong>${rc.false_alarm ?? 0}</strong> false alarm${rc.false_alarm === 1 ? '' : 's'}.
      ${p.proposed ? `Proposed threshold <strong data-role="proposed-threshold">${fmtScore(p.proposed.threshold, 4)}</strong> (current ${fmtScore(p.current?.threshold, 4)}, ${esc(p.method === 'false_alarm_rate' ? 'false-alarm-rate target' : 'best F1')}).` : ''}</p>
      ${p.message ? `<p class="muted proposal-msg">${esc(p.message)}</p>` : ''}`;
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
    const t = parseThreshold(card.r('try').value);
    const applyBtn = card.r('apply');
    applyBtn.disabled = t == null;
    if (t == null) {
      out.textContent = card.r('try').value ? 'Enter a threshold ≥ 0.' : '';
      return;
    }
    applyBtn.textContent = `Apply threshold ${+t.toFixed(4)} to ${card.cam.id}`;
    if (!card.reviewed?.length) {
      out.textContent = 'No reviewed frame of this camera yet: nothing to compare with.';
      return;
    }
    const e = computeEffect(card.reviewed, t);
    out.textContent = `At ${+t.toFixed(4)}: catches ${e.tp} of ${e.tp + e.fn} confirmed defects (recall ${fmtMetric(e.recall, 'ratio')}), ${e.fp} of ${e.fp + e.tn} false alarms still flagged (precision ${fmtMetric(e.precision, 'ratio')}).`;
  }

  async function apply(card) {
    const t = parseThreshold(card.r('try').value);
    if (t == null || !ctx.isAdmin()) return;
    const btn = card.r('apply');
    btn.disabled = true;
    try {
      const cal = await api.applyCalibration(card.cam.id, t);
      ctx.toast(`${card.cam.id}: threshold ${fmtScore(cal?.threshold ?? t, 4)} applied; it takes effect for the next frame.`);
      await ctx.refreshCameras();
      await loadProposal(card);
    } catch (e) {
      ctx.toast(`Applying the threshold failed: ${e.message}`, 'error');
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
      for (const card of cards.values()) card.r('apply').hidden = !isAdmin;
    },
  };
}
