// chart.js -- the throughput chart: judgments per time bucket as SVG bars, with a
// tooltip (<title>) per bar and a text summary for screen readers.
import { svg, el } from './ui.js';

const W = 800;
const H = 200;
const PAD = { left: 36, right: 8, top: 10, bottom: 24 };

// The axis top: four equal whole-number steps of 1, 2 or 5 x 10^k.
function niceMax(v) {
  const raw = Math.max(v, 1) / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  return Math.max(1, Math.ceil(step)) * 4;
}

function tickLabel(date, bucket) {
  if (bucket === 'day') return date.toLocaleDateString(undefined, { month: 'short', day: 'numeric' });
  return date.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

export function throughputChart(data) {
  const series = data.series || [];
  const max = niceMax(Math.max(0, ...series.map((s) => s.judgments)));
  const innerW = W - PAD.left - PAD.right;
  const innerH = H - PAD.top - PAD.bottom;
  const bw = series.length ? innerW / series.length : innerW;
  const chart = svg('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img',
    'aria-label': `Judgments per ${data.bucket}: ${data.total} in all from ${new Date(data.from).toLocaleString()} to ${new Date(data.to).toLocaleString()}` });
  for (let i = 0; i <= 4; i++) {
    const v = (max / 4) * i;
    const y = PAD.top + innerH - (v / max) * innerH;
    chart.append(svg('line', { x1: PAD.left, x2: W - PAD.right, y1: y, y2: y, class: 'gridline' }));
    chart.append(svg('text', { x: PAD.left - 6, y: y + 4, 'text-anchor': 'end' }, String(Math.round(v * 10) / 10)));
  }
  const every = Math.max(1, Math.ceil(series.length / 8));
  series.forEach((s, i) => {
    const h = (s.judgments / max) * innerH;
    const x = PAD.left + i * bw;
    const at = new Date(s.at);
    const bar = svg('rect', { x: x + bw * 0.12, y: PAD.top + innerH - h, width: Math.max(bw * 0.76, 1), height: Math.max(h, s.judgments ? 1 : 0), class: 'bar' },
      svg('title', {}, `${at.toLocaleString()}: ${s.judgments} judgment${s.judgments === 1 ? '' : 's'} by ${s.workers} worker${s.workers === 1 ? '' : 's'}`));
    chart.append(bar);
    if (i % every === 0) chart.append(svg('text', { x: x + bw / 2, y: H - 6, 'text-anchor': 'middle' }, tickLabel(at, data.bucket)));
  });
  return el('div', { class: 'chart' }, chart);
}
