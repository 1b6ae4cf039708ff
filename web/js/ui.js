// ui.js -- small DOM helpers shared by the pages: element building without
// innerHTML (so no text from the server is ever parsed as markup), formatting, toasts.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElementNS(tag.startsWith('svg:') ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml',
    tag.replace(/^svg:/, ''));
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') node.addEventListener(key.slice(2), value);
    else if (key === 'text') node.textContent = value;
    else if (key in node && !tag.startsWith('svg:') && typeof value !== 'string') node[key] = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const svg = (tag, attrs, ...children) => el(`svg:${tag}`, attrs, ...children);

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

export function pct(x, digits = 0) {
  return x === null || x === undefined || Number.isNaN(x) ? '—' : `${(x * 100).toFixed(digits)}%`;
}

export function num(x, digits = 2) {
  return x === null || x === undefined || Number.isNaN(x) ? '—' : Number(x).toFixed(digits);
}

export function when(rfc3339) {
  if (!rfc3339) return '—';
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? rfc3339 : d.toLocaleString();
}

export function seconds(t) {
  const m = Math.floor(t / 60);
  const s = t - m * 60;
  return `${m}:${s.toFixed(2).padStart(5, '0')}`;
}

let toastTimer = 0;
export function toast(message) {
  let node = document.querySelector('.toast');
  if (!node) {
    node = el('div', { class: 'toast', role: 'status', 'aria-live': 'polite' });
    document.body.append(node);
  }
  node.textContent = message;
  node.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { node.hidden = true; }, 2500);
}

// True when a key press belongs to a text field and must not trigger shortcuts.
export function typingIn(target) {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable) return true;
  if (target instanceof HTMLTextAreaElement) return true;
  if (target instanceof HTMLSelectElement) return true;
  return target instanceof HTMLInputElement && !['radio', 'checkbox', 'button', 'submit', 'range'].includes(target.type);
}

// Label colours: distinct hues, readable on dark images and on white.
const PALETTE = ['#ff5a5f', '#3fb6ff', '#ffc12e', '#4ade80', '#c084fc', '#fb923c', '#22d3ee', '#f472b6', '#a3e635', '#94a3b8'];
export function labelColor(index) {
  return PALETTE[((index % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

export function topbar(where, me, extra = []) {
  return el('header', { class: 'topbar' },
    el('a', { class: 'brand', href: 'index.html' }, 'Tally', el('span', {}, ' ·')),
    el('span', { class: 'where' }, where),
    el('span', { class: 'spacer' }),
    ...extra,
    me ? el('span', { class: 'who' }, `${me.name} (${me.role})`) : null,
    me ? el('button', { type: 'button', class: 'small', id: 'sign-out' }, 'Sign out') : null);
}
