// transcription.js -- what is said in the audio: a text box beside the player. The
// stage's transport gives playback speed and a loop (drag on the waveform to pick the
// stretch to repeat); Ctrl+Space plays / pauses without leaving the text box, Enter
// submits and Shift+Enter starts a new line.
import { el } from '../js/ui.js';
import { shell, nextId } from './shell.js';

export function create(spec, ctx) {
  const frame = shell(spec, spec.language ? `transcription (${spec.language})` : 'transcription');
  const id = nextId('tr');
  const count = el('span', { class: 'small muted', 'aria-live': 'off' });
  const box = el('textarea', { id, rows: 5, maxlength: spec.max_length || undefined, lang: spec.language || undefined,
    'aria-labelledby': frame.titleId, spellcheck: 'true',
    oninput: () => { frame.setError(''); update(); ctx.changed(); }, onfocus: () => ctx.activate(control) });
  const update = () => { count.textContent = spec.max_length ? `${box.value.length} / ${spec.max_length}` : `${box.value.length} characters`; };
  frame.body.append(box, el('div', { class: 'row' }, count),
    el('p', { class: 'hint' }, el('kbd', {}, 'Ctrl'), '+', el('kbd', {}, 'Space'), ' play / pause · drag on the waveform and tick Loop to repeat a stretch · ',
      el('kbd', {}, 'Shift'), '+', el('kbd', {}, 'Enter'), ' new line'));
  update();
  const control = {
    el: frame.root, frame, spec, usesAudio: true,
    value() { return box.value.trim() === '' ? undefined : box.value; },
    set(v) { if (typeof v === 'string') { box.value = v; update(); } },
    activate() { frame.setActive(true); },
    deactivate() { frame.setActive(false); },
    key() { return false; },
    focus() { box.focus(); },
    destroy() {},
  };
  return control;
}
