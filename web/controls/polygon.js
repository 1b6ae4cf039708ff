// polygon.js -- polygons on the image: click to place points, click the first point
// (or press Enter) to close, Escape abandons the one being drawn; drag a vertex of the
// selected polygon to move it; Delete removes the selected polygon. Answer:
// [{"label"?,"points":[[x,y],...]}] in original-image pixels.
import { el, svg, labelColor, clear } from '../js/ui.js';
import { shell, labelPicker, digitIndex } from './shell.js';

export function create(spec, ctx) {
  const stage = ctx.imageStage;
  const labels = spec.labels || [];
  const colorOf = (label) => labelColor(label ? labels.indexOf(label) : 0);
  const frame = shell(spec, 'polygons');
  let polygons = [];
  let drawing = null;    // points of the polygon being drawn
  let selected = -1;
  let drag = null;
  const layer = stage.layer();
  const picker = labels.length ? labelPicker(labels, colorOf, (label) => {
    ctx.activate(control);
    if (selected >= 0) { polygons[selected].label = label; changed(); }
  }) : null;
  const list = el('ul', { class: 'shape-list', 'aria-label': 'Polygons' });
  frame.body.append(picker ? picker.el : '', list,
    el('p', { class: 'hint' }, 'Click to place points; click the first point or press ', el('kbd', {}, 'Enter'), ' to close. ',
      el('kbd', {}, 'Esc'), ' abandons, ', el('kbd', {}, 'Del'), ' removes the selected polygon.'));

  function changed() { frame.setError(''); draw(); ctx.changed(); }

  function close() {
    if (!drawing || drawing.length < 3) return false;
    polygons.push({ label: picker ? picker.current : undefined, points: drawing });
    drawing = null;
    selected = polygons.length - 1;
    changed();
    return true;
  }

  function draw() {
    clear(layer);
    const r = 5 * stage.scale();
    polygons.forEach((poly, i) => {
      const color = colorOf(poly.label);
      layer.append(svg('polygon', { points: poly.points.map((p) => p.join(',')).join(' '), class: `shape${i === selected ? ' selected' : ''}`,
        fill: `${color}30`, stroke: color, dataset: { poly: i, part: 'body' } }));
      if (i === selected) poly.points.forEach((p, k) => layer.append(svg('circle', { cx: p[0], cy: p[1], r, class: 'handle vertex', dataset: { poly: i, vertex: k } })));
    });
    if (drawing) {
      const color = colorOf(picker?.current);
      layer.append(svg('polyline', { points: drawing.map((p) => p.join(',')).join(' '), class: 'shape', fill: 'none', stroke: color }));
      drawing.forEach((p, k) => layer.append(svg('circle', { cx: p[0], cy: p[1], r: k === 0 ? r * 1.4 : r, class: 'handle', dataset: { first: k === 0 ? '1' : '' } })));
    }
    clear(list);
    if (!polygons.length) list.append(el('li', { class: 'muted' }, drawing ? `Drawing: ${drawing.length} point(s)` : 'No polygons yet.'));
    polygons.forEach((poly, i) => list.append(el('li', { class: i === selected ? 'selected' : '' },
      el('span', { class: 'swatch', style: `background:${colorOf(poly.label)}` }),
      el('button', { type: 'button', class: 'small', onclick: () => { ctx.activate(control); selected = i; draw(); } }, `#${i + 1} ${poly.label || 'polygon'}`),
      el('span', { class: 'coords' }, `${poly.points.length} points`),
      el('button', { type: 'button', class: 'small danger', 'aria-label': `Delete polygon ${i + 1}`, onclick: () => { polygons.splice(i, 1); selected = -1; changed(); } }, '✕'))));
  }

  const tool = {
    down(p, event) {
      const d = event.target.dataset || {};
      if (d.vertex !== undefined && d.vertex !== '') { drag = { poly: Number(d.poly), vertex: Number(d.vertex) }; return; }
      if (drawing) {
        if (d.first === '1' && drawing.length >= 3) { close(); return; }
        drawing.push([p.x, p.y]);
        draw();
        return;
      }
      if (d.part === 'body') { selected = Number(d.poly); if (picker) picker.show(polygons[selected].label); draw(); return; }
      selected = -1;
      drawing = [[p.x, p.y]];
      draw();
    },
    move(p) {
      if (!drag) return;
      polygons[drag.poly].points[drag.vertex] = [p.x, p.y];
      draw();
    },
    up() { if (drag) { drag = null; changed(); } },
    redraw: draw,
  };

  const control = {
    el: frame.root, frame, spec, usesImage: true,
    value() {
      return polygons.length || !spec.required ? polygons.map((poly) => (poly.label ? { label: poly.label, points: poly.points } : { points: poly.points })) : undefined;
    },
    set(v) {
      if (!Array.isArray(v)) return;
      polygons = v.filter((poly) => poly && Array.isArray(poly.points) && poly.points.length >= 3)
        .map((poly) => ({ label: labels.includes(poly.label) ? poly.label : (picker ? labels[0] : undefined), points: poly.points.map(([x, y]) => [Math.round(x), Math.round(y)]) }));
      draw();
    },
    busy() { return Boolean(drawing); },
    activate() { frame.setActive(true); stage.tool = tool; },
    deactivate() { frame.setActive(false); if (stage.tool === tool) stage.tool = null; },
    key(event) {
      if (event.key === 'Enter' && drawing) { if (!close()) frame.setError('A polygon needs at least 3 points.'); return true; }
      if (event.key === 'Escape' && drawing) { drawing = null; draw(); return true; }
      if ((event.key === 'Delete' || event.key === 'Backspace') && selected >= 0) { polygons.splice(selected, 1); selected = -1; changed(); return true; }
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
