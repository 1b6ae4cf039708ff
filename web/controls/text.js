// text.js -- a free-text answer (`max_length`, `placeholder`): one line; Enter submits.
import { el } from '../js/ui.js';
import { shell, nextId } from './shell.js';

export function create(spec, ctx) {
  const frame = shell(spec, 'text');
  const id = nextId('text');
  const input = el('input', { type: 'text', id, maxlength: spec.max_length || undefined, placeholder: spec.placeholder || undefined,
    'aria-labelledby': frame.titleId, autocomplete: 'off', oninput: () => { frame.setError(''); ctx.changed(); },
    onfocus: () => ctx.activate(control) });
  frame.body.append(input);
  const control = {
    el: frame.root, frame, spec,
    value() { return input.value.trim() === '' ? undefined : input.value; },
    set(v) { if (typeof v === 'string') input.value = v; },
    activate() { frame.setActive(true); },
    deactivate() { frame.setActive(false); },
    key() { return false; },
    focus() { input.focus(); },
    destroy() {},
  };
  return control;
}
