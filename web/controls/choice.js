// choice.js -- one option of `options`: a radio group; number keys pick.
import { el } from '../js/ui.js';
import { shell, nextId, digitIndex } from './shell.js';

export function create(spec, ctx) {
  const frame = shell(spec, 'choose one');
  const name = nextId('choice');
  const inputs = spec.options.map((option) => el('input', { type: 'radio', name, value: option, onchange: () => { frame.setError(''); ctx.changed(); } }));
  frame.body.append(el('div', { class: 'options', role: 'radiogroup', 'aria-labelledby': frame.titleId },
    spec.options.map((option, i) => el('label', { class: 'option', onclick: () => ctx.activate(control) },
      inputs[i], el('span', {}, option), i < 9 ? el('kbd', { class: 'key' }, String(i + 1)) : null))));
  const control = {
    el: frame.root, frame, spec,
    value() {
      const checked = inputs.find((i) => i.checked);
      return checked ? checked.value : undefined;
    },
    set(v) {
      for (const input of inputs) input.checked = input.value === v;
    },
    activate() { frame.setActive(true); },
    deactivate() { frame.setActive(false); },
    key(event) {
      const i = digitIndex(event);
      if (i < 0 || i >= inputs.length) return false;
      inputs[i].checked = true;
      frame.setError('');
      ctx.changed();
      return true;
    },
    focus() { (inputs.find((i) => i.checked) || inputs[0]).focus(); },
    destroy() {},
  };
  return control;
}
