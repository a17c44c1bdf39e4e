// The defect catalogue on review and the maintenance handover (pure: no DOM).

/** The catalogue as the server gives it (GET /v1/defects/catalogue); used until that answers. */
export const DEFAULT_CATALOGUE = Object.freeze({
  types: [
    ['missing_clip', 'missing clip'], ['fractured_clip', 'fractured clip'], ['deformed_clip', 'deformed clip'],
    ['displaced_clip', 'displaced clip'], ['inverted_clip', 'inverted clip'], ['missing_bolt', 'missing bolt'],
    ['loose_bolt', 'loose bolt'], ['foreign_object', 'foreign object'], ['cracked_sleeper', 'cracked sleeper'], ['other', 'other'],
  ].map(([id, label]) => ({ id, label })),
  severities: ['immediate', 'plan', 'monitor'],
  rail_sides: ['left', 'right'],
  lifecycle_states: ['open', 'repair_ordered', 'repaired'],
});

/** The key that picks the k-th type in the picker: 1…9, then 0 for the tenth. */
export function typeKey(k) {
  return k < 9 ? String(k + 1) : k === 9 ? '0' : null;
}

/** The type a digit key picks, or null. */
export function typeForKey(key, types) {
  if (!/^[0-9]$/.test(key ?? '')) return null;
  const k = key === '0' ? 9 : Number(key) - 1;
  return types[k]?.id ?? null;
}

/** The severity after `current` in the configured list (wrapping). */
export function nextSeverity(severities, current) {
  if (!severities.length) return null;
  const i = severities.indexOf(current);
  return severities[(i + 1) % severities.length];
}

/** The review body of a confirmation: type and severity, rail side and sleeper when given. */
export function confirmBody({ type, severity, railSide, sleeper, note }) {
  const body = { state: 'confirmed', note: note ?? '', type, severity };
  if (railSide) body.rail_side = railSide;
  const n = Number.parseInt(String(sleeper ?? ''), 10);
  if (String(sleeper ?? '').trim() !== '' && Number.isInteger(n) && n >= 0) body.sleeper = n;
  return body;
}

/**
 * The query of GET /v1/defects for the handover filters: track, km range (km, as typed, to
 * metres), time range (ISO), severity and state; `format` json|csv|geojson|html.
 */
export function defectQuery(f, format) {
  const p = new URLSearchParams();
  if (format && format !== 'json') p.set('format', format);
  if (f.track_id) p.set('track_id', f.track_id);
  const m = (km) => (String(km ?? '').trim() === '' || !Number.isFinite(Number(km)) ? null : Math.round(Number(km) * 1e4) / 10);
  if (m(f.from_km) !== null) p.set('min_position_m', String(m(f.from_km)));
  if (m(f.to_km) !== null) p.set('max_position_m', String(m(f.to_km)));
  if (f.since) p.set('since', f.since);
  if (f.until) p.set('until', f.until);
  if (f.severity) p.set('severity', f.severity);
  if (f.state) p.set('state', f.state);
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** The lifecycle moves offered for a defect in `state` (the server's rule). */
export function nextStates(state) {
  return { open: ['repair_ordered', 'repaired'], repair_ordered: ['repaired', 'open'], repaired: [] }[state] ?? [];
}

export const STATE_LABELS = Object.freeze({ open: 'open', repair_ordered: 'repair ordered', repaired: 'repaired' });
export const MOVE_LABELS = Object.freeze({ repair_ordered: 'Order repair', repaired: 'Mark repaired', open: 'Cancel order' });
