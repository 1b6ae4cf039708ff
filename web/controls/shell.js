// shell.js -- the frame every control's panel shares: title, required marker,
// description, an error line, and the "active" state (the control that gets number
// keys and, for shapes, the pointer on the stage).
//
// The control interface (what work.js expects from each module's create(spec, ctx)):
//   el            the panel element
//   value()       the answer for this control, or undefined when nothing is given
//   set(v)        load a starting answer (a pre-label); ignores what does not fit
//   activate() / deactivate()   take / release the stage's pointer (shape controls)
//   key(event)    handle a key while this control is active; true when consumed
//   destroy()     release listeners and layers
// ctx: { task, imageStage, audioStage, activate(control), changed() }
import { el } from '../js/ui.js';

let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

export function shell(spec, typeLabel) {
  const titleId = nextId('ctl');
  const errorId = `${titleId}-err`;
  const error = el('div', { class: 'error', id: errorId, role: 'alert' });
  const body = el('div', {});
  const root = el('section', { class: 'control', 'aria-labelledby': titleId, dataset: { control: spec.name, type: spec.type } },
    el('header', {},
      el('h3', { id: titleId }, spec.title || spec.name),
      spec.required ? el('span', { class: 'req', title: 'required', 'aria-label': 'required' }, '*') : null,
      el('span', { class: 'muted small' }, typeLabel)),
    spec.description ? el('p', { class: 'desc' }, spec.description) : null,
    body, error);
  return {
    root, body, titleId, errorId,
    setError(message) {
      error.textContent = message || '';
      root.classList.toggle('invalid', Boolean(message));
    },
    setActive(on) { root.classList.toggle('active', on); },
  };
}

// Index of the digit key 1..9 (0 for "1"), or -1.
export function digitIndex(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return -1;
  const m = /^(?:Digit|Numpad)([1-9])$/.exec(event.code);
  return m ? Number(m[1]) - 1 : -1;
}

// A label picker (radio group) for shape controls: number keys choose.
export function labelPicker(labels, colorOf, onPick) {
  const name = nextId('labels');
  let current = labels[0] ?? null;
  const inputs = [];
  const group = el('div', { class: 'options', role: 'radiogroup', 'aria-label': 'Label for new shapes' },
    labels.map((label, i) => {
      const input = el('input', { type: 'radio', name, value: label, checked: i === 0,
        onchange: () => { current = label; onPick(label); } });
      inputs.push(input);
      return el('label', { class: 'option' }, input,
        el('span', { class: 'swatch', style: `background:${colorOf(label)}` }), label,
        i < 9 ? el('kbd', { class: 'key' }, String(i + 1)) : null);
    }));
  return {
    el: group,
    get current() { return current; },
    pick(index) {
      if (index < 0 || index >= labels.length) return false;
      inputs[index].checked = true;
      current = labels[index];
      onPick(current);
      return true;
    },
    show(label) {
      const i = labels.indexOf(label);
      if (i >= 0) { inputs[i].checked = true; current = label; }
    },
  };
}
