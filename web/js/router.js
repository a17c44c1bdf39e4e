// Hash routing (pure): "#/review/42" → { view: 'review', arg: '42' }.

export const VIEWS = Object.freeze(['wall', 'review', 'defects', 'trends', 'calibration']);

export function parseRoute(hash) {
  const parts = String(hash ?? '').replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const view = VIEWS.includes(parts[0]) ? parts[0] : 'wall';
  const arg = view === parts[0] ? (parts[1] ?? null) : null;
  return { view, arg };
}

export function routeHash(view, arg = null) {
  return arg == null ? `#/${view}` : `#/${view}/${encodeURIComponent(arg)}`;
}
