// multi_choice.js -- any of `options` (between `min` and `max`): checkboxes; number
// keys toggle.
import { el } from '../js/ui.js';
import { shell, digitIndex } from './shell.js';

export function create(spec, ctx) {
  const bounds = [spec.min ? `at least ${spec.min}` : '', spec.max ? `at most ${spec.max}` : ''].filter(Boolean).join(', ');
  const frame = shell(spec, bounds ? `choose ${bounds}` : 'choose any');
  const inputs = spec.options.map((option) => el('input', { type: 'checkbox', value: option, onchange: () => { frame.setError(''); ctx.changed(); } }));
  frame.body.append(el('div', { class: 'options', role: 'group', 'aria-labelledby': frame.titleId },
    spec.options.map((option, i) => el('label', { class: 'option', onclick: () => ctx.activate(control) },
      inputs[i], el('span', {}, option), i < 9 ? el('kbd', { class: 'key' }, String(i + 1)) : null))));
  const control = {
    el: frame.root, frame, spec,
    value() {
      const chosen = inputs.filter((i) => i.checked).map((i) => i.value);
      return chosen.length || !spec.required ? chosen : undefined;
    },
    check() {
      const n = inputs.filter((i) => i.checked).length;
      if (spec.min && n < spec.min) return `Choose at least ${spec.min}.`;
      if (spec.max && n > spec.max) return `Choose at most ${spec.max}.`;
      return '';
    },
    set(v) {
      if (!Array.isArray(v)) return;
      for (const input of inputs) input.checked = v.includes(input.value);
    },
    activate() { frame.setActive(true); },
    deactivate() { frame.setActive(false); },
    key(event) {
      const i = digitIndex(event);
      if (i < 0 || i >= inputs.length) return false;
      inputs[i].checked = !inputs[i].checked;
      frame.setError('');
      ctx.changed();
      return true;
    },
    focus() { inputs[0].focus(); },
    destroy() {},
  };
  return control;
}
