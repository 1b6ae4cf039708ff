// bbox.js -- boxes on the image: drag on empty image to draw one with the chosen
// label, drag a box to move it, drag a corner to resize, Delete removes the selected
// box, and the label picker (or number keys) relabels it. Answer:
// [{"label","x","y","w","h"}] in original-image pixels.
import { el, svg, labelColor, clear } from '../js/ui.js';
import { shell, labelPicker, digitIndex } from './shell.js';

const MIN_SIZE = 2;   // px: a smaller drag is a click, not a box

export function create(spec, ctx) {
  const stage = ctx.imageStage;
  const labels = spec.labels;
  const colorOf = (label) => labelColor(labels.indexOf(label));
  const frame = shell(spec, 'boxes');
  let boxes = [];
  let selected = -1;
  let drag = null;
  const layer = stage.layer();

  const picker = labelPicker(labels, colorOf, (label) => {
    ctx.activate(control);
    if (selected >= 0) { boxes[selected].label = label; changed(); }
  });
  const list = el('ul', { class: 'shape-list', 'aria-label': 'Boxes' });
  frame.body.append(picker.el, list,
    el('p', { class: 'hint' }, 'Drag on the image to draw. Drag a box to move it, a corner to resize; arrow keys nudge the selected box (',
      el('kbd', {}, 'Alt'), ': resize). ', el('kbd', {}, 'Del'), ' removes it.'));

  function changed() {
    frame.setError('');
    draw();
    ctx.changed();
  }

  function select(i) {
    selected = i;
    if (i >= 0) picker.show(boxes[i].label);
    draw();
  }

  function draw() {
    clear(layer);
    const r = 6 * stage.scale();
    boxes.forEach((b, i) => {
      const color = colorOf(b.label);
      const g = svg('g', {});
      g.append(svg('rect', { x: b.x, y: b.y, width: b.w, height: b.h, class: `shape movable${i === selected ? ' selected' : ''}`,
        fill: `${color}26`, stroke: color, dataset: { box: i, part: 'body' } }));
      g.append(svg('text', { x: b.x + 4 * stage.scale(), y: b.y + 14 * stage.scale(), 'font-size': 12 * stage.scale() }, b.label));
      if (i === selected) {
        for (const [part, hx, hy] of [['nw', b.x, b.y], ['ne', b.x + b.w, b.y], ['sw', b.x, b.y + b.h], ['se', b.x + b.w, b.y + b.h]]) {
          g.append(svg('circle', { cx: hx, cy: hy, r, class: `handle ${part}`, dataset: { box: i, part } }));
        }
      }
      layer.append(g);
    });
    clear(list);
    if (!boxes.length) list.append(el('li', { class: 'muted' }, 'No boxes yet.'));
    boxes.forEach((b, i) => {
      list.append(el('li', { class: i === selected ? 'selected' : '', dataset: { box: i } },
        el('span', { class: 'swatch', style: `background:${colorOf(b.label)}` }),
        el('button', { type: 'button', class: 'small', 'aria-label': `Select box ${i + 1} (${b.label})`, onclick: () => { ctx.activate(control); select(i); } }, `#${i + 1} ${b.label}`),
        el('span', { class: 'coords mono' }, `${b.x},${b.y} ${b.w}×${b.h}`),
        el('button', { type: 'button', class: 'small danger', 'aria-label': `Delete box ${i + 1}`, onclick: () => remove(i) }, '✕')));
    });
  }

  function remove(i) {
    boxes.splice(i, 1);
    selected = -1;
    changed();
  }

  const clampBox = (b) => {
    const x = Math.max(0, Math.min(b.x, stage.width - 1));
    const y = Math.max(0, Math.min(b.y, stage.height - 1));
    return { ...b, x, y, w: Math.max(1, Math.min(b.w, stage.width - x)), h: Math.max(1, Math.min(b.h, stage.height - y)) };
  };

  const tool = {
    down(p, event) {
      const part = event.target.dataset?.part;
      const i = Number(event.target.dataset?.box);
      if (part && Number.isInteger(i) && boxes[i]) {
        select(i);
        drag = { kind: part, start: p, orig: { ...boxes[i] } };
        return;
      }
      select(-1);
      drag = { kind: 'new', start: p };
    },
    move(p) {
      if (!drag) return;
      const dx = p.x - drag.start.x;
      const dy = p.y - drag.start.y;
      if (drag.kind === 'new') {
        drag.box = { label: picker.current, x: Math.min(p.x, drag.start.x), y: Math.min(p.y, drag.start.y), w: Math.abs(dx), h: Math.abs(dy) };
        if (drag.box.w >= MIN_SIZE && drag.box.h >= MIN_SIZE) {
          if (drag.index === undefined) { boxes.push(drag.box); drag.index = boxes.length - 1; selected = drag.index; }
          boxes[drag.index] = drag.box;
          draw();
        }
        return;
      }
      const o = drag.orig;
      let { x, y, w, h } = o;
      if (drag.kind === 'body') {
        x = Math.min(Math.max(o.x + dx, 0), stage.width - o.w);
        y = Math.min(Math.max(o.y + dy, 0), stage.height - o.h);
      } else {
        let x1 = o.x, y1 = o.y, x2 = o.x + o.w, y2 = o.y + o.h;
        if (drag.kind.includes('w')) x1 = o.x + dx; else x2 = o.x + o.w + dx;
        if (drag.kind.includes('n')) y1 = o.y + dy; else y2 = o.y + o.h + dy;
        x = Math.min(x1, x2); y = Math.min(y1, y2); w = Math.abs(x2 - x1); h = Math.abs(y2 - y1);
      }
      boxes[selected] = clampBox({ label: o.label, x, y, w: Math.max(w, 1), h: Math.max(h, 1) });
      draw();
    },
    up() {
      if (drag && (drag.kind !== 'new' || drag.index !== undefined)) changed();
      drag = null;
    },
    redraw: draw,
  };

  const control = {
    el: frame.root, frame, spec, usesImage: true,
    value() {
      return boxes.length || !spec.required ? boxes.map((b) => ({ label: b.label, x: b.x, y: b.y, w: b.w, h: b.h })) : undefined;
    },
    set(v) {
      if (!Array.isArray(v)) return;
      boxes = v.filter((b) => b && labels.includes(b.label) && b.w > 0 && b.h > 0)
        .map((b) => clampBox({ label: b.label, x: Math.round(b.x), y: Math.round(b.y), w: Math.round(b.w), h: Math.round(b.h) }));
      draw();
    },
    activate() { frame.setActive(true); stage.tool = tool; },
    deactivate() { frame.setActive(false); if (stage.tool === tool) stage.tool = null; },
    key(event) {
      if ((event.key === 'Delete' || event.key === 'Backspace') && selected >= 0) { remove(selected); return true; }
      if (event.key === 'Escape' && selected >= 0) { select(-1); return true; }
      const arrows = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      if (arrows[event.key] && selected >= 0) {
        // Arrows move the selected box by a pixel (Shift: 10); with Alt they resize it.
        const [dx, dy] = arrows[event.key].map((d) => d * (event.shiftKey ? 10 : 1));
        const b = boxes[selected];
        boxes[selected] = event.altKey
          ? clampBox({ ...b, w: Math.max(1, b.w + dx), h: Math.max(1, b.h + dy) })
          : clampBox({ ...b, x: Math.min(Math.max(b.x + dx, 0), stage.width - b.w), y: Math.min(Math.max(b.y + dy, 0), stage.height - b.h) });
        changed();
        return true;
      }
      const i = digitIndex(event);
      return i >= 0 && picker.pick(i);
    },
    focus() { frame.root.querySelector('input')?.focus(); },
    destroy() { layer.remove(); },
  };
  frame.root.addEventListener('pointerdown', () => ctx.activate(control));
  draw();
  return control;
}
