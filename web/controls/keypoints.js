// keypoints.js -- named points on the image (`points`, e.g. ["nose","left_eye"]):
// each click places the next point of the current instance; "Not visible" records the
// next point as absent (null); when every point is placed the next click starts a new
// instance. Without names, clicks add points to the current instance and "New
// instance" starts another. Points can be dragged. Answer:
// [{"label"?,"points":[[x,y] or null,...]}] in original-image pixels.
import { el, svg, labelColor, clear } from '../js/ui.js';
import { shell, labelPicker, digitIndex } from './shell.js';

export function create(spec, ctx) {
  const stage = ctx.imageStage;
  const labels = spec.labels || [];
  const names = spec.points || null;
  const frame = shell(spec, 'keypoints');
  let instances = [];
  let current = -1;   // instance receiving clicks
  let drag = null;
  const layer = stage.layer();
  const colorOf = (i) => labelColor(i);
  const picker = labels.length ? labelPicker(labels, (l) => labelColor(labels.indexOf(l)), (label) => {
    ctx.activate(control);
    if (current >= 0) { instances[current].label = label; changed(); }
  }) : null;
  const status = el('p', { class: 'small', 'aria-live': 'polite' });
  const list = el('ul', { class: 'shape-list', 'aria-label': 'Keypoint instances' });
  const skipButton = el('button', { type: 'button', class: 'small', onclick: () => { ctx.activate(control); place(null); } }, 'Not visible');
  const newButton = el('button', { type: 'button', class: 'small', onclick: () => { ctx.activate(control); startInstance(); draw(); } }, 'New instance');
  frame.body.append(picker ? picker.el : '', status, el('div', { class: 'row' }, names ? skipButton : '', newButton), list,
    el('p', { class: 'hint' }, 'Click on the image to place points; drag a point to move it. ', el('kbd', {}, 'Del'), ' removes the current instance.'));

  function changed() { frame.setError(''); draw(); ctx.changed(); }

  function startInstance() {
    instances.push({ label: picker ? picker.current : undefined, points: [] });
    current = instances.length - 1;
  }

  function complete(inst) { return names && inst.points.length >= names.length; }

  function place(point) {
    if (current < 0 || complete(instances[current])) startInstance();
    if (point === null && !names) return;
    instances[current].points.push(point);
    changed();
  }

  function draw() {
    clear(layer);
    const r = 5 * stage.scale();
    instances.forEach((inst, i) => {
      const color = colorOf(i);
      const placed = inst.points.map((p, k) => [p, k]).filter(([p]) => p);
      if (placed.length > 1) layer.append(svg('polyline', { points: placed.map(([p]) => p.join(',')).join(' '), class: 'shape', fill: 'none', stroke: color, opacity: '.6' }));
      placed.forEach(([p, k]) => {
        layer.append(svg('circle', { cx: p[0], cy: p[1], r, fill: color, class: 'handle vertex', dataset: { inst: i, point: k } }));
        if (names) layer.append(svg('text', { x: p[0] + 7 * stage.scale(), y: p[1] - 5 * stage.scale(), 'font-size': 11 * stage.scale() }, names[k]));
      });
    });
    const inst = instances[current];
    if (names) {
      const next = !inst || complete(inst) ? names[0] : names[inst.points.length];
      status.textContent = `Next point: ${next}${!inst || complete(inst) ? ' (new instance)' : ''}`;
    } else {
      status.textContent = inst ? `Instance ${current + 1}: ${inst.points.length} point(s)` : 'Click to place the first point.';
    }
    clear(list);
    instances.forEach((it, i) => list.append(el('li', { class: i === current ? 'selected' : '' },
      el('span', { class: 'swatch', style: `background:${colorOf(i)}` }),
      el('button', { type: 'button', class: 'small', onclick: () => { current = i; draw(); } }, `#${i + 1}${it.label ? ` ${it.label}` : ''}`),
      el('span', { class: 'coords' }, `${it.points.filter(Boolean).length}${names ? `/${names.length}` : ''} points`),
      el('button', { type: 'button', class: 'small danger', 'aria-label': `Delete instance ${i + 1}`, onclick: () => { instances.splice(i, 1); current = instances.length - 1; changed(); } }, '✕'))));
  }

  const tool = {
    down(p, event) {
      const d = event.target.dataset || {};
      if (d.point !== undefined && d.point !== '') { drag = { inst: Number(d.inst), point: Number(d.point) }; current = drag.inst; return; }
      place([p.x, p.y]);
    },
    move(p) {
      if (!drag) return;
      instances[drag.inst].points[drag.point] = [p.x, p.y];
      draw();
    },
    up() { if (drag) { drag = null; changed(); } },
    redraw: draw,
  };

  const control = {
    el: frame.root, frame, spec, usesImage: true,
    value() {
      const out = instances.filter((inst) => inst.points.some(Boolean)).map((inst) => {
        const points = names ? names.map((_, k) => inst.points[k] ?? null) : inst.points.filter(Boolean);
        return inst.label ? { label: inst.label, points } : { points };
      });
      return out.length || !spec.required ? out : undefined;
    },
    set(v) {
      if (!Array.isArray(v)) return;
      instances = v.filter((inst) => inst && Array.isArray(inst.points))
        .map((inst) => ({ label: labels.includes(inst.label) ? inst.label : (picker ? labels[0] : undefined),
          points: inst.points.map((p) => (Array.isArray(p) ? [Math.round(p[0]), Math.round(p[1])] : null)) }));
      current = instances.length - 1;
      draw();
    },
    activate() { frame.setActive(true); stage.tool = tool; },
    deactivate() { frame.setActive(false); if (stage.tool === tool) stage.tool = null; },
    key(event) {
      if ((event.key === 'Delete' || event.key === 'Backspace') && current >= 0) { instances.splice(current, 1); current = instances.length - 1; changed(); return true; }
      const i = digitIndex(event);
      return Boolean(picker) && i >= 0 && picker.pick(i);
    },
    focus() { frame.root.querySelector('input, button')?.focus(); },
    destroy() { layer.remove(); },
  };
  frame.root.addEventListener('pointerdown', () => ctx.activate(control));
  draw();
  return control;
}
