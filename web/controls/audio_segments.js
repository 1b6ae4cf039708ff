// audio_segments.js -- labeled stretches of audio: drag on the waveform to make one
// with the chosen label, drag its edges to adjust, drag its body to move it; the list
// gives exact start / end fields, a play button and delete. Answer:
// [{"label","start","end"}] in seconds (millisecond precision).
import { el, svg, labelColor, clear } from '../js/ui.js';
import { shell, labelPicker, digitIndex } from './shell.js';

const MIN_LEN = 0.05;   // s: a shorter drag is a click (seek)

export function create(spec, ctx) {
  const stage = ctx.audioStage;
  const labels = spec.labels;
  const colorOf = (label) => labelColor(labels.indexOf(label));
  const frame = shell(spec, 'segments');
  let segments = [];
  let selected = -1;
  let drag = null;
  const ms = (t) => Math.round(t * 1000) / 1000;
  const picker = labelPicker(labels, colorOf, (label) => {
    ctx.activate(control);
    if (selected >= 0) { segments[selected].label = label; changed(); }
  });
  const list = el('ul', { class: 'shape-list', 'aria-label': 'Segments' });
  frame.body.append(picker.el, list,
    el('p', { class: 'hint' }, 'Drag on the waveform to mark a segment; drag its edges to adjust. ', el('kbd', {}, 'Del'), ' removes the selected one.'));

  function changed() { frame.setError(''); draw(); ctx.changed(); }

  function select(i) {
    selected = i;
    if (i >= 0) { picker.show(segments[i].label); stage.setLoop(segments[i]); }
    draw();
  }

  function draw() {
    clear(stage.regions);
    stage.clearLabels();
    const edge = 8 * stage.unitsPerPixel();
    segments.forEach((s, i) => {
      const color = colorOf(s.label);
      const x1 = stage.x(s.start);
      const x2 = stage.x(s.end);
      stage.regions.append(svg('rect', { x: x1, y: 0, width: Math.max(x2 - x1, 1), height: 200, fill: `${color}40`, stroke: color,
        class: `segment${i === selected ? ' selected' : ''}`, dataset: { seg: i, part: 'body' } }));
      stage.regions.append(svg('rect', { x: x1 - edge / 2, y: 0, width: edge, height: 200, class: 'edge', dataset: { seg: i, part: 'start' } }));
      stage.regions.append(svg('rect', { x: x2 - edge / 2, y: 0, width: edge, height: 200, class: 'edge', dataset: { seg: i, part: 'end' } }));
      stage.label(s.start, s.label, color);
    });
    clear(list);
    if (!segments.length) list.append(el('li', { class: 'muted' }, 'No segments yet.'));
    segments.forEach((s, i) => {
      const field = (key) => el('input', { type: 'number', step: '0.01', min: '0', max: String(stage.duration), value: s[key].toFixed(3),
        'aria-label': `Segment ${i + 1} ${key} (seconds)`,
        onchange: (e) => {
          const v = ms(Number(e.target.value));
          if (Number.isFinite(v)) { s[key] = Math.min(Math.max(v, 0), stage.duration); normalize(s); changed(); }
        } });
      list.append(el('li', { class: i === selected ? 'selected' : '' },
        el('span', { class: 'swatch', style: `background:${colorOf(s.label)}` }),
        el('button', { type: 'button', class: 'small', onclick: () => { ctx.activate(control); select(i); } }, `#${i + 1} ${s.label}`),
        field('start'), '–', field('end'),
        el('button', { type: 'button', class: 'small', 'aria-label': `Play segment ${i + 1}`, onclick: () => stage.playRange(s.start, s.end) }, '▶'),
        el('button', { type: 'button', class: 'small danger', 'aria-label': `Delete segment ${i + 1}`, onclick: () => remove(i) }, '✕')));
    });
  }

  function normalize(s) {
    if (s.end < s.start) [s.start, s.end] = [s.end, s.start];
    if (s.end - s.start < 0.001) s.end = Math.min(stage.duration, s.start + 0.001);
  }

  function remove(i) {
    segments.splice(i, 1);
    selected = -1;
    stage.setLoop(null);
    changed();
  }

  const tool = {
    down(t, event) {
      const d = event.target.dataset || {};
      const i = Number(d.seg);
      if (d.part && segments[i]) {
        select(i);
        drag = { kind: d.part, start: t, orig: { ...segments[i] } };
        return;
      }
      drag = { kind: 'new', start: t };
    },
    move(t) {
      if (!drag) return;
      if (drag.kind === 'new') {
        if (Math.abs(t - drag.start) < MIN_LEN && drag.index === undefined) return;
        const seg = { label: picker.current, start: Math.min(t, drag.start), end: Math.max(t, drag.start) };
        if (drag.index === undefined) { segments.push(seg); drag.index = segments.length - 1; selected = drag.index; }
        segments[drag.index] = seg;
      } else {
        const o = drag.orig;
        const s = segments[selected];
        if (drag.kind === 'start') s.start = Math.min(t, o.end - 0.001);
        else if (drag.kind === 'end') s.end = Math.max(t, o.start + 0.001);
        else {
          const len = o.end - o.start;
          s.start = ms(Math.min(Math.max(o.start + (t - drag.start), 0), stage.duration - len));
          s.end = ms(s.start + len);
        }
      }
      draw();
    },
    up(t, event, moved) {
      const d = drag;
      drag = null;
      if (!d) return;
      if (d.kind === 'new' && d.index === undefined) { select(-1); stage.setLoop(null); stage.seek(t); return; }
      if (!moved && d.kind === 'body') { stage.seek(t); return; }
      const s = segments[d.kind === 'new' ? d.index : selected];
      s.start = ms(s.start);
      s.end = ms(s.end);
      stage.setLoop(s);
      changed();
    },
  };

  const control = {
    el: frame.root, frame, spec, usesAudio: true,
    value() {
      return segments.length || !spec.required ? segments.map((s) => ({ label: s.label, start: s.start, end: s.end })) : undefined;
    },
    set(v) {
      if (!Array.isArray(v)) return;
      segments = v.filter((s) => s && labels.includes(s.label) && s.end > s.start)
        .map((s) => ({ label: s.label, start: ms(Math.max(0, s.start)), end: ms(Math.min(stage.duration, s.end)) }));
      draw();
    },
    activate() { frame.setActive(true); stage.tool = tool; },
    deactivate() { frame.setActive(false); if (stage.tool === tool) stage.tool = null; },
    key(event) {
      if ((event.key === 'Delete' || event.key === 'Backspace') && selected >= 0) { remove(selected); return true; }
      const i = digitIndex(event);
      return i >= 0 && picker.pick(i);
    },
    focus() { frame.root.querySelector('input')?.focus(); },
    destroy() { clear(stage.regions); stage.clearLabels(); },
  };
  frame.root.addEventListener('pointerdown', () => ctx.activate(control));
  draw();
  return control;
}
