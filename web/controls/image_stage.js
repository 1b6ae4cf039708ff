// image_stage.js -- the item's image with an SVG overlay whose viewBox is the image's
// own pixel grid (item.media.width x height). Shapes drawn there are in original-image
// pixels whatever the image's size on screen, so answers need no conversion: a pointer
// position is mapped through the SVG's screen transform and rounded to whole pixels.
//
// One shape control at a time owns the pointer (the active one): the stage forwards
// pointerdown / move / up to its `tool` with the point in image pixels; each control
// draws into its own layer (<g>).
import { el, svg } from '../js/ui.js';

export class ImageStage {
  constructor(container, { width, height, src, alt }) {
    this.width = width;
    this.height = height;
    this.tool = null;
    this.drag = null;
    this.img = el('img', { src, alt: alt || 'Item to label', width, height, draggable: 'false' });
    this.svg = svg('svg', { viewBox: `0 0 ${width} ${height}`, 'aria-hidden': 'true' });
    this.el = el('div', { class: 'image-stage' }, this.img, this.svg);
    // Fit the whole image in the viewport: the width follows from the height cap.
    this.el.style.maxWidth = `min(100%, calc((100vh - 12rem) * ${width / height}))`;
    container.append(this.el);
    this.svg.addEventListener('pointerdown', (e) => this.down(e));
    this.svg.addEventListener('pointermove', (e) => this.move(e));
    this.svg.addEventListener('pointerup', (e) => this.up(e));
    this.svg.addEventListener('pointercancel', (e) => this.up(e));
    this.resizeObserver = new ResizeObserver(() => this.tool?.redraw?.());
    this.resizeObserver.observe(this.el);
  }

  layer() {
    const g = svg('g', {});
    this.svg.append(g);
    return g;
  }

  // Image pixels per screen pixel (to keep handles a constant size on screen).
  scale() {
    const w = this.svg.getBoundingClientRect().width;
    return w > 0 ? this.width / w : 1;
  }

  point(event, clamp = true) {
    const ctm = this.svg.getScreenCTM();
    if (!ctm) return { x: 0, y: 0 };
    const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(ctm.inverse());
    let x = Math.round(p.x);
    let y = Math.round(p.y);
    if (clamp) {
      x = Math.min(Math.max(x, 0), this.width);
      y = Math.min(Math.max(y, 0), this.height);
    }
    return { x, y };
  }

  down(event) {
    if (!this.tool || event.button !== 0) return;
    event.preventDefault();
    this.svg.setPointerCapture(event.pointerId);
    this.drag = event.pointerId;
    this.tool.down(this.point(event), event);
  }

  move(event) {
    if (!this.tool) return;
    if (this.drag === event.pointerId) this.tool.move(this.point(event), event);
  }

  up(event) {
    if (this.drag !== event.pointerId) return;
    this.drag = null;
    this.tool?.up(this.point(event), event);
  }

  destroy() {
    this.resizeObserver.disconnect();
    this.el.remove();
  }
}
