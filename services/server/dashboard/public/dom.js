// Building the page: every value from the API becomes a text node or an attribute value, never
// markup. Nothing here assigns innerHTML (the page's Trusted Types policy would refuse it anyway).

/** @typedef {Node | string | number | null | undefined | false} Child */

/**
 * An element with attributes, listeners (`onclick`: a function) and children; strings are text.
 * @param {string} tag
 * @param {Record<string, unknown>} [props]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElement}
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(typeof child === 'object' ? child : document.createTextNode(String(child)));
  }
  return el;
}

/**
 * The element with this id, of the expected kind.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} kind
 * @returns {T}
 */
export function byId(id, kind) {
  const el = document.getElementById(id);
  if (!(el instanceof kind)) throw new Error(`#${id} is missing`);
  return el;
}

/**
 * A table with a header row and the given rows (or one row saying there is nothing).
 * @param {string[]} columns
 * @param {HTMLElement[]} rows
 * @param {string} empty
 */
export function table(columns, rows, empty) {
  const body = rows.length > 0 ? rows : [h('tr', {}, h('td', { colspan: columns.length, class: 'empty' }, empty))];
  return h('table', {}, h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))), h('tbody', {}, body));
}

/**
 * A status word in a coloured badge (`class` from a fixed list, the text as given).
 * @param {string} word
 */
export function badge(word) {
  const known = ['queued', 'running', 'succeeded', 'failed', 'rolled-back', 'hot', 'unchanged', 'started', 'reloaded',
    'current', 'previous', 'bad', 'alive', 'down', 'lagging', 'in-sync', 'none', 'reload', 'start', 'passed', 'skipped'];
  return h('span', { class: `badge ${known.includes(word) ? `b-${word}` : 'b-other'}` }, word);
}

/** @param {number | null | undefined} n */
export function bytes(n) {
  if (typeof n !== 'number') return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

/** @param {number | null | undefined} ms */
export function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '—';
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
}

/**
 * A time as `HH:MM:SS` (today) or a date, with the full time in the title.
 * @param {string | null | undefined} iso
 */
export function when(iso) {
  if (!iso) return h('span', {}, '—');
  const date = new Date(iso);
  const today = new Date().toDateString() === date.toDateString();
  return h('time', { datetime: iso, title: date.toString() }, today ? date.toLocaleTimeString() : date.toLocaleString());
}

/**
 * How long ago, in words a glance can read.
 * @param {string | null | undefined} iso
 */
export function ago(iso) {
  if (!iso) return '—';
  const s = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}
