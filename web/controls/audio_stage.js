// audio_stage.js -- the item's audio: the waveform (peaks from /v1/items/{id}/waveform)
// drawn as an SVG whose x axis is time, a playhead, and a transport (play/pause,
// position, playback speed, loop). The audio plays from a blob: URL.
//
// Pointer work on the waveform goes to the active audio control's `tool` with the time
// in seconds (audio_segments draws segments); with no tool, a drag marks the loop
// region and a click seeks. Segment labels are HTML on an overlay, since the SVG is
// stretched to the waveform's box (preserveAspectRatio none) and text would be too.
import { el, svg, clear, seconds } from '../js/ui.js';

const VIEW_W = 1000;
const VIEW_H = 200;

export class AudioStage {
  constructor(container, { duration, src, waveform }) {
    this.duration = duration > 0 ? duration : 1;
    this.tool = null;
    this.loop = null;          // {start, end} or null
    this.stopAt = null;        // end of a "play this range"
    this.audio = el('audio', { src, preload: 'auto' });
    this.svg = svg('svg', { viewBox: `0 0 ${VIEW_W} ${VIEW_H}`, preserveAspectRatio: 'none', 'aria-hidden': 'true' });
    this.svg.append(svg('line', { x1: 0, x2: VIEW_W, y1: VIEW_H / 2, y2: VIEW_H / 2, class: 'axis' }));
    if (waveform && Array.isArray(waveform.data)) this.svg.append(this.peaks(waveform));
    this.loopRect = svg('rect', { class: 'loop', x: 0, y: 0, width: 0, height: VIEW_H, visibility: 'hidden' });
    this.regions = svg('g', {});
    this.playhead = svg('line', { class: 'playhead', x1: 0, x2: 0, y1: 0, y2: VIEW_H });
    this.svg.append(this.loopRect, this.regions, this.playhead);
    this.overlay = el('div', { class: 'wave-labels' });
    this.wave = el('div', { class: 'waveform', role: 'group', 'aria-label': 'Waveform: drag to mark a stretch of audio, click to jump there' }, this.svg, this.overlay);

    this.playButton = el('button', { type: 'button', class: 'primary', 'aria-pressed': 'false', onclick: () => this.toggle() }, 'Play');
    this.time = el('span', { class: 'time mono', 'aria-live': 'off' });
    this.speed = el('select', { 'aria-label': 'Playback speed', onchange: () => { this.audio.playbackRate = Number(this.speed.value); } },
      [0.5, 0.75, 1, 1.25, 1.5, 2].map((r) => el('option', { value: r, selected: r === 1 }, `${r}×`)));
    this.loopBox = el('input', { type: 'checkbox', onchange: () => this.updateLoop() });
    this.loopLabel = el('span', { class: 'small muted' }, 'whole file');
    const transport = el('div', { class: 'transport' }, this.playButton,
      el('span', { class: 'small muted' }, el('kbd', {}, 'Space'), ' / ', el('kbd', {}, 'Ctrl'), '+', el('kbd', {}, 'Space')),
      this.time, el('label', { class: 'row small' }, 'Speed', this.speed),
      el('label', { class: 'row small' }, this.loopBox, 'Loop', this.loopLabel));
    this.el = el('div', { class: 'audio-stage' }, this.wave, transport, this.audio);
    container.append(this.el);

    this.drag = null;
    this.wave.addEventListener('pointerdown', (e) => this.down(e));
    this.wave.addEventListener('pointermove', (e) => this.move(e));
    this.wave.addEventListener('pointerup', (e) => this.up(e));
    this.wave.addEventListener('pointercancel', (e) => this.up(e));
    this.audio.addEventListener('play', () => this.playing(true));
    this.audio.addEventListener('pause', () => this.playing(false));
    this.audio.addEventListener('ended', () => this.playing(false));
    this.tick = this.tick.bind(this);
    this.showTime();
  }

  peaks(waveform) {
    const pairs = Math.floor(waveform.data.length / 2);
    const parts = [];
    for (let i = 0; i < pairs; i++) {
      const x = ((i + 0.5) / pairs) * VIEW_W;
      const lo = VIEW_H / 2 - (waveform.data[2 * i] / 128) * (VIEW_H / 2 - 4);
      const hi = VIEW_H / 2 - (waveform.data[2 * i + 1] / 128) * (VIEW_H / 2 - 4);
      parts.push(`M${x.toFixed(1)} ${hi.toFixed(1)}V${Math.max(lo, hi + 1).toFixed(1)}`);
    }
    return svg('path', { class: 'peaks', d: parts.join('') });
  }

  x(t) { return (t / this.duration) * VIEW_W; }

  // View-box units per screen pixel along x (for handles of constant screen width).
  unitsPerPixel() {
    const w = this.wave.getBoundingClientRect().width;
    return w > 0 ? VIEW_W / w : 1;
  }

  timeAt(event) {
    const rect = this.wave.getBoundingClientRect();
    const f = (event.clientX - rect.left) / rect.width;
    return Math.round(Math.min(Math.max(f, 0), 1) * this.duration * 1000) / 1000;
  }

  label(t, text, color) {
    this.overlay.append(el('span', { class: 'wave-label', style: `left:${(t / this.duration) * 100}%;border-color:${color}` }, text));
  }

  clearLabels() { clear(this.overlay); }

  down(event) {
    if (event.button !== 0) return;
    event.preventDefault();
    this.wave.setPointerCapture(event.pointerId);
    this.drag = { id: event.pointerId, start: this.timeAt(event), moved: false };
    if (this.tool) this.tool.down(this.drag.start, event);
  }

  move(event) {
    if (!this.drag || this.drag.id !== event.pointerId) return;
    const t = this.timeAt(event);
    if (Math.abs(t - this.drag.start) > 0.02) this.drag.moved = true;
    if (this.tool) return this.tool.move(t, event);
    if (this.drag.moved) this.setLoop({ start: Math.min(t, this.drag.start), end: Math.max(t, this.drag.start) });
  }

  up(event) {
    if (!this.drag || this.drag.id !== event.pointerId) return;
    const t = this.timeAt(event);
    const { moved } = this.drag;
    this.drag = null;
    if (this.tool) return this.tool.up(t, event, moved);
    if (!moved) this.seek(t);
  }

  setLoop(region) {
    this.loop = region && region.end - region.start > 0.01 ? region : null;
    this.updateLoop();
  }

  updateLoop() {
    const on = Boolean(this.loop);
    this.loopRect.setAttribute('visibility', on ? 'visible' : 'hidden');
    if (on) {
      this.loopRect.setAttribute('x', this.x(this.loop.start));
      this.loopRect.setAttribute('width', Math.max(this.x(this.loop.end) - this.x(this.loop.start), 1));
    }
    this.loopLabel.textContent = on ? `${seconds(this.loop.start)}–${seconds(this.loop.end)}` : 'whole file';
  }

  seek(t) {
    this.audio.currentTime = Math.min(Math.max(t, 0), this.duration);
    this.showTime();
  }

  toggle() {
    if (this.audio.paused) this.play(); else this.audio.pause();
  }

  play() {
    this.stopAt = null;
    if (this.loopBox.checked && this.loop && (this.audio.currentTime < this.loop.start || this.audio.currentTime >= this.loop.end)) {
      this.audio.currentTime = this.loop.start;
    }
    this.audio.play().catch(() => { /* autoplay refusal or aborted by a pause: nothing to do */ });
  }

  playRange(start, end) {
    this.audio.currentTime = start;
    this.audio.play().catch(() => {});
    this.stopAt = end;
  }

  playing(on) {
    this.playButton.textContent = on ? 'Pause' : 'Play';
    this.playButton.setAttribute('aria-pressed', String(on));
    if (on) requestAnimationFrame(this.tick);
    this.showTime();
  }

  tick() {
    const t = this.audio.currentTime;
    if (this.stopAt !== null && t >= this.stopAt) {
      this.audio.pause();
      this.stopAt = null;
    } else if (this.loopBox.checked && this.loop && t >= this.loop.end) {
      this.audio.currentTime = this.loop.start;
    } else if (this.loopBox.checked && !this.loop && this.audio.ended) {
      this.audio.currentTime = 0;
      this.audio.play().catch(() => {});
    }
    this.showTime();
    if (!this.audio.paused) requestAnimationFrame(this.tick);
  }

  showTime() {
    const t = this.audio.currentTime || 0;
    this.time.textContent = `${seconds(t)} / ${seconds(this.duration)}`;
    const x = this.x(t);
    this.playhead.setAttribute('x1', x);
    this.playhead.setAttribute('x2', x);
  }

  key(event) {
    if (event.code === 'Space' && (event.ctrlKey || !event.target.closest?.('input, textarea, select, button'))) {
      this.toggle();
      return true;
    }
    return false;
  }

  destroy() {
    this.audio.pause();
    this.audio.removeAttribute('src');
    this.el.remove();
  }
}
