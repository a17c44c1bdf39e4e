// Defects: confirmed defects for the maintenance handover — filters (track, km range, time,
// severity, repair state), the list in track order with its repair lifecycle, and the exports
// (CSV, GeoJSON downloads and the printable work order) of GET /v1/defects with those filters.

import { escapeHtml as esc, fromDatetimeLocal } from '../format.js';
import { DEFAULT_CATALOGUE, MOVE_LABELS, STATE_LABELS, defectQuery, nextStates } from '../defects.js';

export function createDefectsView(ctx) {
  const { api } = ctx;
  const root = document.getElementById('view-defects');
  const form = document.getElementById('defect-filters');
  const table = document.getElementById('defect-table');
  const summary = document.getElementById('defect-summary');
  const links = { csv: document.getElementById('export-csv'), geojson: document.getElementById('export-geojson'), html: document.getElementById('export-print') };
  let seq = 0;

  function filters() {
    const fd = new FormData(form);
    return {
      track_id: (fd.get('track_id') ?? '').trim(),
      from_km: fd.get('from_km') ?? '',
      to_km: fd.get('to_km') ?? '',
      since: fromDatetimeLocal(fd.get('since')),
      until: fromDatetimeLocal(fd.get('until')),
      severity: fd.get('severity') ?? '',
      state: fd.get('state') ?? '',
    };
  }

  function fillSeverities(list) {
    const sel = form.elements.severity;
    const cur = sel.value;
    sel.innerHTML = `<option value="">any</option>${list.map((s) => `<option value="${esc(s)}">${esc(s)}</option>`).join('')}`;
    sel.value = list.includes(cur) ? cur : '';
  }

  function row(d) {
    const moves = nextStates(d.state).map((to) => `<button type="button" class="btn small" data-id="${d.id}" data-to="${to}">${esc(MOVE_LABELS[to])}</button>`).join(' ');
    return `<tr data-id="${d.id}">
      <td data-label="#"><a href="#/review/${d.id}">#${d.id}</a></td><td data-label="Track">${esc(d.track_id ?? '–')}</td><td class="num" data-label="km">${esc(d.km ?? '–')}</td>
      <td data-label="Rail">${esc(d.rail_side ?? '–')}</td><td class="num" data-label="Sleeper">${d.sleeper ?? '–'}</td><td data-label="Camera">${esc(d.camera)}</td><td data-label="Time">${esc(d.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z'))}</td>
      <td data-label="Type">${esc((d.type ?? 'unclassified').replace(/_/g, ' '))}</td><td data-label="Severity">${esc(d.severity ?? '–')}</td>
      <td data-role="state" data-label="Repair">${esc(STATE_LABELS[d.state] ?? d.state)}${d.state_by ? ` <span class="muted">(${esc(d.state_by)})</span>` : ''}</td>
      <td data-label="Note">${esc(d.note)}</td><td data-label="Reviewer">${esc(d.reviewer)}</td>
      <td data-label="Image">${d.image_url ? `<a href="${esc(d.image_url)}" target="_blank" rel="noopener">image</a>` : '–'}</td>
      <td class="moves"${moves ? ' data-label="Actions"' : ''}>${moves}</td></tr>`;
  }

  async function load() {
    const my = ++seq;
    const f = filters();
    for (const [fmt, a] of Object.entries(links)) a.href = `/v1/defects${defectQuery(f, fmt)}`;
    try {
      const res = await api.defects(defectQuery(f, 'json'));
      if (my !== seq) return;
      summary.textContent = `${res.count} confirmed defect${res.count === 1 ? '' : 's'}${res.truncated ? ' (cut at the limit: narrow the filters)' : ''}, in track order`;
      table.querySelector('tbody').innerHTML = res.items.length ? res.items.map(row).join('') : '<tr><td colspan="14" class="muted">No confirmed defect matches these filters.</td></tr>';
    } catch (e) {
      if (my !== seq) return;
      summary.textContent = `Could not load: ${e.message}`;
    }
  }

  form.addEventListener('change', load);
  form.addEventListener('submit', (e) => { e.preventDefault(); load(); });
  table.addEventListener('click', async (e) => {
    const b = e.target.closest('button[data-to]');
    if (!b) return;
    b.disabled = true;
    try {
      await api.lifecycle(Number(b.dataset.id), b.dataset.to);
      ctx.toast(`#${b.dataset.id}: ${STATE_LABELS[b.dataset.to]}`);
      await load();
    } catch (err) {
      ctx.toast(`#${b.dataset.id}: ${err.message}`, 'error');
      b.disabled = false;
    }
  });
  fillSeverities(DEFAULT_CATALOGUE.severities);

  return {
    root,
    load,
    update() {},
    show() {
      api.catalogue().then((c) => fillSeverities(c.severities ?? [])).catch(() => {});
      load();
    },
  };
}
