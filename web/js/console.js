// console.js -- the manager console (console.html#project=ID), read-mostly: projects
// with their progress through the workflow, quality figures, a throughput chart,
// batches with their per-file errors, the worker table, and exports (create one,
// download it). "New project" starts from a predefined template
// (templates/predefined.json).
import { api, apiAll, download, requireUser, signOut, ApiError } from './api.js';
import { el, clear, pct, num, when, topbar, toast } from './ui.js';
import { throughputChart } from './chart.js';

const main = document.getElementById('main');
const STATES = [
  ['new', 'New', '#c9d1dd'], ['labeling', 'Labeling', '#7aa2ff'], ['labeled', 'Labeled', '#4f7cf0'],
  ['review', 'In review', '#f2b84b'], ['done', 'Done', '#4ade80'], ['released', 'Released', '#1d7a46'],
];
const EXPORT_FORMATS = {
  image: ['coco', 'voc', 'yolo', 'imagenet', 'csv', 'jsonl', 'labelstudio'],
  audio: ['nemo', 'rttm', 'segments_csv', 'csv', 'jsonl', 'labelstudio'],
};
let projects = [];
let selectedId = 0;
let exportPoll = 0;
let predefined = [];

function metric(label, value, id) {
  return el('div', { class: 'metric' }, el('div', { class: 'value', id }, value), el('div', { class: 'label' }, label));
}

function section(title, ...children) {
  const head = el('div', { class: 'section-head' }, el('h2', {}, title), el('span', { class: 'spacer' }));
  return { head, node: el('section', { class: 'card', 'aria-label': title }, head, ...children) };
}

function table(columns, rows, onRow) {
  const thead = el('thead', {}, el('tr', {}, columns.map((c) => el('th', { class: c.num ? 'num' : '', scope: 'col' }, c.title))));
  const tbody = el('tbody', {}, rows.length ? rows.map((row) => {
    const tr = el('tr', { class: onRow ? 'clickable' : '' }, columns.map((c) => el('td', { class: c.num ? 'num' : '' }, c.value(row))));
    if (onRow) {
      tr.tabIndex = 0;
      tr.addEventListener('click', () => onRow(row));
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') onRow(row); });
    }
    return tr;
  }) : el('tr', {}, el('td', { colspan: columns.length, class: 'muted' }, 'Nothing yet.')));
  return el('div', { class: 'table-wrap' }, el('table', { class: 'data' }, thead, tbody));
}

// ---- navigation ------------------------------------------------------------------------

function renderNav() {
  const nav = clear(document.getElementById('project-nav'));
  if (!projects.length) nav.append(el('li', { class: 'muted small' }, 'No projects yet.'));
  for (const p of projects) {
    nav.append(el('li', {}, el('a', { href: `#project=${p.id}`, 'aria-current': p.id === selectedId ? 'page' : undefined },
      el('span', {}, p.name), el('span', { class: `badge ${p.state === 'active' ? 'ok' : ''}` }, p.media))));
  }
}

async function route() {
  const m = /project=(\d+)/.exec(location.hash);
  selectedId = m ? Number(m[1]) : (projects[0]?.id || 0);
  renderNav();
  clearInterval(exportPoll);
  if (!selectedId) {
    clear(main).append(el('div', { class: 'empty' }, el('h1', {}, 'No projects yet'), el('p', {}, 'Create one from a predefined template with “New project”.')));
    return;
  }
  await showProject(selectedId);
}

// ---- one project ------------------------------------------------------------------------

async function showProject(id) {
  let project;
  let stats;
  try {
    [project, stats] = await Promise.all([api('GET', `/v1/projects/${id}`), api('GET', `/v1/projects/${id}/stats`)]);
  } catch (e) {
    clear(main).append(el('p', { class: 'notice bad', role: 'alert' }, e.message));
    return;
  }
  clear(main);
  main.append(el('section', { class: 'section-head' },
    el('h1', { id: 'project-title' }, project.name),
    el('span', { class: `badge ${project.state === 'active' ? 'ok' : ''}` }, project.state),
    el('span', { class: 'muted small' }, `${project.media} · ${project.template.controls.map((c) => c.type).join(', ')} · created ${when(project.created_at)}`),
    el('span', { class: 'spacer' }),
    el('a', { class: 'button', href: `work.html?project=${project.id}` }, 'Open the worker page')));
  if (stats.warnings?.length) main.append(el('p', { class: 'notice warn' }, stats.warnings.map((w) => w.message).join(' ')));
  main.append(progressSection(stats));
  main.append(qualitySection(stats));
  const chart = section('Throughput');
  const bucket = el('select', { 'aria-label': 'Time buckets', id: 'bucket' },
    [['minute', 'Per minute, last 2 hours'], ['hour', 'Per hour, last 48 hours'], ['day', 'Per day, last 30 days']].map(([v, t]) => el('option', { value: v, selected: v === 'hour' }, t)));
  const chartBox = el('div', { id: 'throughput' });
  chart.head.append(bucket);
  chart.node.append(chartBox);
  main.append(chart.node);
  const loadChart = async () => {
    try {
      const data = await api('GET', `/v1/projects/${id}/throughput?bucket=${bucket.value}`);
      clear(chartBox).append(throughputChart(data), el('p', { class: 'small muted' }, `${data.total} judgment${data.total === 1 ? '' : 's'} in this window.`));
    } catch (e) {
      clear(chartBox).append(el('p', { class: 'notice bad' }, e.message));
    }
  };
  bucket.addEventListener('change', loadChart);
  loadChart();

  const grid = el('div', { class: 'two-col' });
  main.append(grid);
  grid.append(await batchesSection(id), await workersSection(id));
  main.append(await exportsSection(project));
}

function progressSection(stats) {
  const items = stats.items || {};
  const total = STATES.reduce((n, [k]) => n + (items[k] || 0), 0);
  const bar = el('div', { class: 'progress', role: 'img', 'aria-label': STATES.map(([k, t]) => `${t} ${items[k] || 0}`).join(', ') },
    STATES.map(([k, t, color]) => (items[k] ? el('span', { style: `width:${(items[k] / total) * 100}%;background:${color}`, title: `${t}: ${items[k]}` }) : null)));
  const legend = el('div', { class: 'legend', id: 'state-legend' }, STATES.map(([k, t, color]) =>
    el('span', { dataset: { state: k } }, el('span', { class: 'swatch', style: `background:${color}` }), `${t} `, el('strong', {}, String(items[k] || 0)))));
  const done = (items.done || 0) + (items.released || 0);
  const s = section('Progress through the workflow',
    el('div', { class: 'metrics' },
      metric('work items', String(stats.items_total ?? total), 'stat-items'),
      metric('finished (done + released)', `${done} · ${pct(total ? done / total : null)}`, 'stat-finished'),
      metric(stats.test_questions ? `test questions (${stats.test_questions.needed} needed)` : 'test questions', String(stats.gold ?? 0), 'stat-gold'),
      metric('judgments', String(stats.judgments ?? 0), 'stat-judgments')),
    bar, legend);
  return s.node;
}

function qualitySection(stats) {
  const agreement = Object.entries(stats.agreement || {});
  const s = section('Quality',
    el('div', { class: 'metrics' },
      metric('workers (active)', `${stats.workers ?? 0} (${stats.workers_active ?? 0})`, 'stat-workers'),
      metric('stopped / failed quiz', `${stats.workers_stopped ?? 0} / ${stats.workers_failed ?? 0}`),
      metric('mean trust', num(stats.mean_trust)),
      metric('estimated accuracy', pct(stats.estimated_accuracy, 1)),
      metric('reviewed accuracy', pct(stats.reviewed_accuracy, 1)),
      metric('sampled accuracy (lots)', pct(stats.sampled_accuracy, 1)),
      metric('excluded judgments', String(stats.excluded_judgments ?? 0)),
      ...agreement.map(([name, a]) => metric(`agreement on “${name}” (α / %)`, `${num(a.alpha)} / ${pct(a.percent)}`))),
    agreement.length ? null : el('p', { class: 'small muted' }, 'Agreement figures appear once choice questions have overlapping judgments.'));
  return s.node;
}

async function batchesSection(projectId) {
  const s = section('Batches');
  const report = el('div', { id: 'batch-report' });
  let batches = [];
  try {
    batches = await apiAll(`/v1/projects/${projectId}/batches`, 1000);
  } catch (e) {
    s.node.append(el('p', { class: 'notice bad' }, e.message));
    return s.node;
  }
  const showBatch = async (b) => {
    const full = await api('GET', `/v1/batches/${b.id}`);
    clear(report).append(el('div', { class: 'stack' }, el('h3', {}, `Batch “${full.name}” — ${full.state}`),
      el('p', { class: 'small muted' }, `${full.total} files: ${full.accepted} accepted, ${full.duplicates} duplicates, ${full.rejected} rejected, ${full.pending} pending.`),
      full.error ? el('p', { class: 'notice bad small' }, full.error) : null,
      full.errors?.length ? table([
        { title: 'File', value: (e) => el('span', { class: 'mono' }, e.file) },
        { title: 'Code', value: (e) => el('span', { class: 'badge bad' }, e.code) },
        { title: 'Reason', value: (e) => e.message },
      ], full.errors) : el('p', { class: 'small muted' }, 'No file was rejected.'),
      full.errors_truncated ? el('p', { class: 'small muted' }, 'Only the first 1000 rejected files are listed.') : null));
  };
  s.node.append(table([
    { title: 'Batch', value: (b) => b.name },
    { title: 'State', value: (b) => el('span', { class: `badge ${b.state === 'done' ? 'ok' : b.state === 'failed' ? 'bad' : ''}` }, b.state) },
    { title: 'Files', num: true, value: (b) => b.total },
    { title: 'Accepted', num: true, value: (b) => b.accepted },
    { title: 'Dup.', num: true, value: (b) => b.duplicates },
    { title: 'Rejected', num: true, value: (b) => b.rejected },
  ], batches, (b) => showBatch(b).catch((e) => toast(e.message))), report);
  if (batches.length) s.node.append(el('p', { class: 'hint' }, 'Choose a batch to see its report with the per-file errors.'));
  return s.node;
}

async function workersSection(projectId) {
  const s = section('Workers');
  try {
    const workers = await apiAll(`/v1/projects/${projectId}/workers`, 1000);
    s.node.append(table([
      { title: 'Worker', value: (w) => el('span', { class: 'mono' }, w.worker) },
      { title: 'Status', value: (w) => el('span', { class: `badge ${w.status === 'active' ? 'ok' : 'bad'}`, title: w.reason || '' }, `${w.status}${w.mode === 'quiz' ? ' (quiz)' : ''}`) },
      { title: 'Trust', num: true, value: (w) => num(w.trust) },
      { title: 'Gold acc.', num: true, value: (w) => (w.gold_seen ? `${pct(w.gold_correct / w.gold_seen)} of ${w.gold_seen}` : '—') },
      { title: 'Quiz', num: true, value: (w) => (w.quiz_seen ? `${w.quiz_correct}/${w.quiz_seen}` : '—') },
      { title: 'Judgments', num: true, value: (w) => `${w.judgments}${w.excluded ? ` (+${w.excluded} excl.)` : ''}` },
    ], workers));
  } catch (e) {
    s.node.append(el('p', { class: 'notice bad' }, e.message));
  }
  return s.node;
}

function exportFileName(x) {
  const type = x.artifact?.content_type || '';
  const ext = type.includes('tar') ? 'tar' : type.includes('json') ? (x.format === 'jsonl' || x.format === 'nemo' ? 'jsonl' : 'json') : type.includes('csv') ? 'csv' : 'dat';
  return `tally-project${x.project_id}-export${x.id}-${x.format}.${ext}`;
}

async function exportsSection(project) {
  const s = section('Exports');
  const format = el('select', { id: 'export-format', 'aria-label': 'Export format' }, (EXPORT_FORMATS[project.media] || []).map((f) => el('option', { value: f }, f)));
  const includeDone = el('input', { type: 'checkbox', id: 'export-done' });
  const withMedia = el('input', { type: 'checkbox', id: 'export-media', checked: true });
  const create = el('button', { type: 'button', class: 'primary', id: 'create-export' }, 'Create export');
  const listBox = el('div', { id: 'export-list' });
  s.head.append(format, el('label', { class: 'row small' }, includeDone, 'include done, not yet accepted'),
    el('label', { class: 'row small' }, withMedia, 'with media'), create);
  s.node.append(listBox);
  const refresh = async () => {
    const exports = await apiAll(`/v1/projects/${project.id}/exports`, 200);
    exports.sort((a, b) => b.id - a.id);
    clear(listBox).append(table([
      { title: 'Export', value: (x) => `#${x.id} ${x.format}` },
      { title: 'State', value: (x) => el('span', { class: `badge ${x.state === 'done' ? 'ok' : x.state === 'failed' ? 'bad' : ''}`, title: x.error || '' }, x.state) },
      { title: 'Items', num: true, value: (x) => x.items ?? '—' },
      { title: 'Size', num: true, value: (x) => (x.artifact?.size ? `${(x.artifact.size / 1024).toFixed(1)} KiB` : '—') },
      { title: 'Version', value: (x) => el('span', { class: 'mono small' }, x.sha256 ? x.sha256.slice(0, 12) : '—') },
      { title: 'Created', value: (x) => when(x.created_at) },
      { title: '', value: (x) => (x.state === 'done' ? el('button', { type: 'button', class: 'small', dataset: { export: x.id },
        onclick: () => download(x.download_url, exportFileName(x)).then(() => toast('Download started')).catch((e) => toast(e.message)) }, 'Download') : '') },
    ], exports));
    return exports.some((x) => x.state === 'queued' || x.state === 'running');
  };
  create.addEventListener('click', async () => {
    create.disabled = true;
    try {
      const body = { format: format.value, media: withMedia.checked };
      if (includeDone.checked) body.filters = { state: 'done' };
      const x = await api('POST', `/v1/projects/${project.id}/exports`, body);
      toast(`Export #${x.id} queued`);
      clearInterval(exportPoll);
      exportPoll = setInterval(async () => { if (!(await refresh().catch(() => false))) clearInterval(exportPoll); }, 1000);
      await refresh();
    } catch (e) {
      toast(e instanceof ApiError ? `${e.message}` : String(e));
    } finally {
      create.disabled = false;
    }
  });
  try {
    if (await refresh()) exportPoll = setInterval(async () => { if (!(await refresh().catch(() => false))) clearInterval(exportPoll); }, 1000);
  } catch (e) {
    listBox.append(el('p', { class: 'notice bad' }, e.message));
  }
  return s.node;
}

// ---- new project from a predefined template --------------------------------------------

function labelsKey(t) {
  const c = t.template.controls[0];
  return c.options ? 'options' : c.labels ? 'labels' : c.points ? 'points' : null;
}

function fillTemplateFields() {
  const t = predefined.find((x) => x.id === document.getElementById('np-template').value);
  if (!t) return;
  document.getElementById('np-description').textContent = `${t.description} (${t.media})`;
  const key = labelsKey(t);
  const labels = document.getElementById('np-labels');
  labels.closest('label').hidden = !key;
  labels.value = key ? t.template.controls[0][key].join(', ') : '';
  document.getElementById('np-guidelines').value = t.guidelines || '';
  if (!document.getElementById('np-name').value) document.getElementById('np-name').value = t.name;
}

async function openNewProject() {
  const dialog = document.getElementById('new-project-dialog');
  if (!predefined.length) {
    const res = await fetch('templates/predefined.json');
    predefined = (await res.json()).templates;
    const select = document.getElementById('np-template');
    for (const t of predefined) select.append(el('option', { value: t.id }, `${t.name} (${t.media})`));
    select.addEventListener('change', () => { document.getElementById('np-name').value = ''; fillTemplateFields(); });
  }
  document.getElementById('np-name').value = '';
  clear(document.getElementById('np-error'));
  fillTemplateFields();
  dialog.showModal();
}

async function createProject(event) {
  event.preventDefault();
  const t = predefined.find((x) => x.id === document.getElementById('np-template').value);
  const template = structuredClone(t.template);
  const key = labelsKey(t);
  if (key) {
    const values = document.getElementById('np-labels').value.split(',').map((s) => s.trim()).filter(Boolean);
    if (values.length) template.controls[0][key] = [...new Set(values)];
  }
  try {
    const p = await api('POST', '/v1/projects', { name: document.getElementById('np-name').value.trim(), media: t.media, template,
      guidelines: document.getElementById('np-guidelines').value });
    document.getElementById('new-project-dialog').close();
    projects = await apiAll('/v1/projects');
    location.hash = `project=${p.id}`;
    toast(`Project “${p.name}” created`);
  } catch (e) {
    clear(document.getElementById('np-error')).append(el('p', { class: 'notice bad small' }, e.message));
  }
}

async function start() {
  const me = await requireUser(['admin', 'manager']);
  if (!me) return;
  const top = topbar('Manager console', me);
  document.getElementById('top').replaceWith(top);
  top.querySelector('#sign-out').addEventListener('click', signOut);
  document.getElementById('new-project').addEventListener('click', () => openNewProject().catch((e) => toast(e.message)));
  document.getElementById('new-project-form').addEventListener('submit', createProject);
  document.getElementById('np-cancel').addEventListener('click', () => document.getElementById('new-project-dialog').close());
  projects = await apiAll('/v1/projects');
  window.addEventListener('hashchange', route);
  await route();
}

start().catch((e) => clear(main).append(el('p', { class: 'notice bad', role: 'alert' }, e.message)));
