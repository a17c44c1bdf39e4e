// Keyboard shortcuts of the review queue (pure: maps a key press to an action name).

/** The shortcuts, for the help text and the docs. */
export const SHORTCUTS = Object.freeze([
  { keys: ['c'], action: 'confirm', label: 'confirm defect: then 1–9 / 0 picks its type (Esc cancels)' },
  { keys: ['s'], action: 'severity', label: 'next severity for the confirmation' },
  { keys: ['f'], action: 'false_alarm', label: 'false alarm' },
  { keys: ['j', 'ArrowDown'], action: 'next', label: 'next (older) item' },
  { keys: ['k', 'ArrowUp'], action: 'prev', label: 'previous (newer) item' },
  { keys: ['n'], action: 'note', label: 'focus the note' },
  { keys: ['h'], action: 'toggle_heatmap', label: 'heatmap on/off' },
  { keys: ['r'], action: 'toggle_reconstruction', label: 'reconstruction beside the frame on/off' },
  { keys: ['z'], action: 'zoom', label: 'zoom on the worst crop' },
  { keys: ['Escape'], action: 'blur', label: 'leave the note field' },
]);

const BY_KEY = new Map();
for (const s of SHORTCUTS) for (const k of s.keys) BY_KEY.set(k, s.action);

/** Whether an element (described by tag name, type, contentEditable) takes typed text or arrow keys. */
export function isEditableTarget({ tagName = '', type = '', isContentEditable = false } = {}) {
  const tag = tagName.toUpperCase();
  if (isContentEditable) return true;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  if (tag === 'INPUT') {
    const t = (type || 'text').toLowerCase();
    return !['button', 'submit', 'reset', 'checkbox', 'radio'].includes(t);
  }
  return false;
}

/**
 * The action for a key press, or null. `ev` has key, ctrlKey, metaKey, altKey and `editable`
 * (true while focus is in a field that takes text or arrows: only Escape acts there).
 */
export function shortcutFor(ev) {
  if (!ev || ev.ctrlKey || ev.metaKey || ev.altKey) return null;
  if (ev.editable) return ev.key === 'Escape' ? 'blur' : null;
  const key = ev.key && ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  return BY_KEY.get(key) ?? null;
}
