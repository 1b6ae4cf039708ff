// work.js -- the worker page (work.html?project=ID): guidelines, then one task after
// another: POST work/next, render the template's controls over the item's media,
// submit (Enter) or skip, quiz feedback after each quiz answer.
//
// Waiting: a task is shown only once its media is fetched and decoded, and the next
// task is requested the moment a submit or skip is acknowledged -- while the quiz
// feedback is read, or while the old task is still on screen -- so the swap is
// immediate. (The API holds one lease per worker and project, so the next task cannot
// be leased before the current one is answered.)
import { api, blobUrl, requireUser, signOut, ApiError } from './api.js';
import { el, clear, topbar, toast, typingIn } from './ui.js';
import { controls as registry, imageTypes, audioTypes } from '../controls/registry.js';
import { ImageStage } from '../controls/image_stage.js';
import { AudioStage } from '../controls/audio_stage.js';

const projectId = Number(new URLSearchParams(location.search).get('project'));
const main = document.getElementById('main');
let project = null;
let current = null;       // {task, controls, stage, urls, shownAt}
let active = null;        // the control receiving keys and stage pointer
let prefetch = null;      // Promise of the next prepared task
let submitting = false;
let feedbackOpen = false;
let switching = false;    // between an answer and the next task on screen: keys wait
let submitted = 0;

function setActive(control) {
  if (active === control) return;
  active?.deactivate();
  active = control;
  active?.activate();
}

// ---- fetching a task and its media ---------------------------------------------------

async function prepareNext() {
  let task;
  try {
    task = await api('POST', `/v1/projects/${projectId}/work/next`);
  } catch (e) {
    return { error: e };
  }
  if (!task) return { empty: true };
  const urls = [];
  try {
    const media = task.item.media || {};
    const src = await blobUrl(task.item.media_url);
    urls.push(src);
    let waveform = null;
    if (project.media === 'audio') {
      waveform = await api('GET', task.item.waveform_url || `/v1/items/${task.item.id}/waveform`).catch(() => null);
    } else {
      const img = new Image();
      img.src = src;
      await img.decode().catch(() => {});
    }
    return { task, src, urls, waveform, media };
  } catch (e) {
    urls.forEach((u) => URL.revokeObjectURL(u));
    return { error: e };
  }
}

function startPrefetch() {
  if (!prefetch) prefetch = prepareNext();
}

async function nextTask() {
  switching = true;
  try {
    startPrefetch();
    const prepared = await prefetch;
    prefetch = null;
    show(prepared);
  } finally {
    switching = false;
  }
}

// ---- rendering ---------------------------------------------------------------------------

function teardown() {
  if (!current) return;
  current.controls.forEach((c) => c.destroy());
  current.stage?.destroy();
  current.urls.forEach((u) => URL.revokeObjectURL(u));
  current = null;
  active = null;
}

function message(kind, title, text, actions = []) {
  teardown();
  clear(main).append(el('div', { class: 'center-page' },
    el('section', { class: `card stack`, role: kind === 'bad' ? 'alert' : 'status' },
      el('h1', {}, title), el('p', { class: 'muted' }, text), el('div', { class: 'row' }, actions))));
}

const refusals = {
  quiz_failed: ['Quiz not passed', 'Thank you for trying. Your quiz answers did not reach the pass mark, so this project is closed for you.'],
  worker_stopped: ['Work paused', 'Your accuracy on check questions fell below what this project needs, so no more tasks are sent to you.'],
  not_enough_test_questions: ['Not ready yet', 'This project is still being set up (it needs more test questions). Please come back later.'],
  gold_exhausted: ['Not ready yet', 'This project has run out of check questions for you. Please come back later.'],
};

function showError(e) {
  if (e instanceof ApiError && e.status === 401) return signOut();
  const known = e instanceof ApiError && refusals[e.code];
  if (known) return message('bad', known[0], known[1], [el('a', { class: 'button', href: 'index.html' }, 'Back to projects')]);
  return message('bad', 'Something went wrong', e.message || String(e),
    [el('button', { type: 'button', class: 'primary', onclick: () => nextTask() }, 'Try again')]);
}

let retryTimer = 0;
function show(prepared) {
  clearTimeout(retryTimer);
  if (prepared.error) return showError(prepared.error);
  if (prepared.empty) {
    message('info', 'No tasks right now', 'Every task available to you is done or taken. This page checks again every 20 seconds.',
      [el('button', { type: 'button', class: 'primary', onclick: () => nextTask() }, 'Check now'), el('a', { class: 'button', href: 'index.html' }, 'Back to projects')]);
    retryTimer = setTimeout(() => nextTask(), 20000);
    return;
  }
  teardown();
  const { task } = prepared;
  const stageBox = el('div', { id: 'stage' });
  const controlBox = el('div', { class: 'stack', id: 'controls' });
  const errorBox = el('div', { id: 'submit-error', role: 'alert' });
  const feedbackBox = el('div', { id: 'feedback', 'aria-live': 'polite' });
  const submitButton = el('button', { type: 'button', class: 'primary', id: 'submit', onclick: () => submit() }, 'Submit ', el('kbd', {}, 'Enter'));
  const skipButton = el('button', { type: 'button', id: 'skip', onclick: () => skip() }, 'Skip');
  const head = el('div', { class: 'task-head' },
    el('span', { class: `badge ${task.mode}` }, task.mode === 'quiz' ? 'Quiz question' : 'Task'),
    el('span', { class: 'muted small' }, project.media === 'image' ? `${prepared.media.width}×${prepared.media.height} px` : `${(prepared.media.duration || 0).toFixed(2)} s audio`),
    el('span', { class: 'spacer' }),
    el('span', { class: 'muted small', id: 'session-count' }, `${submitted} submitted this session`));
  const stageCard = el('section', { class: 'card stage-card', 'aria-label': 'Item' }, head);
  if (task.note) stageCard.append(el('p', { class: 'notice warn small' }, `Reviewer's note: ${task.note}`));
  if (task.prelabel && task.prelabel.answer) {
    const score = typeof task.prelabel.score === 'number' ? ` (confidence ${(task.prelabel.score * 100).toFixed(0)}%)` : '';
    stageCard.append(el('p', { class: 'notice info prelabel-note', id: 'prelabel-note' },
      `Pre-filled by the model ${task.prelabel.model || ''}${score}. Check every answer and correct it before you submit.`));
  }
  stageCard.append(stageBox);
  clear(main).append(el('div', { class: 'work-layout' }, stageCard,
    el('aside', { class: 'side', 'aria-label': 'Answer' }, feedbackBox, controlBox,
      el('div', { class: 'actions' }, submitButton, skipButton), errorBox, guidelinesPanel(), shortcutsPanel())));

  let stage = null;
  const types = task.template.controls.map((c) => c.type);
  if (project.media === 'image') {
    stage = new ImageStage(stageBox, { width: prepared.media.width, height: prepared.media.height, src: prepared.src });
  } else {
    stage = new AudioStage(stageBox, { duration: prepared.media.duration, src: prepared.src, waveform: prepared.waveform });
  }
  const ctx = {
    task,
    imageStage: project.media === 'image' ? stage : null,
    audioStage: project.media === 'audio' ? stage : null,
    activate: setActive,
    changed: () => { errorBox.textContent = ''; },
  };
  const made = [];
  for (const spec of task.template.controls) {
    const module = registry[spec.type];
    if (!module) {
      controlBox.append(el('p', { class: 'notice bad' }, `This page cannot show a '${spec.type}' control.`));
      continue;
    }
    const control = module.create(spec, ctx);
    // Whatever is touched or focused in a control's panel makes it the active one.
    control.el.addEventListener('pointerdown', () => setActive(control));
    control.el.addEventListener('focusin', () => setActive(control));
    made.push(control);
    controlBox.append(control.el);
  }
  current = { task, controls: made, stage, urls: prepared.urls, shownAt: performance.now(), errorBox, feedbackBox, submitButton, skipButton };
  if (task.prelabel && task.prelabel.answer) {
    for (const c of made) if (task.prelabel.answer[c.spec.name] !== undefined) c.set(task.prelabel.answer[c.spec.name]);
  }
  const firstShape = made.find((c) => imageTypes.has(c.spec.type) || c.spec.type === 'audio_segments');
  setActive(firstShape || made[0] || null);
  if (!firstShape && types.every((t) => !audioTypes.has(t) || t === 'transcription')) made[0]?.focus?.();
}

function guidelinesPanel() {
  if (!project.guidelines) return null;
  return el('details', { class: 'card' }, el('summary', {}, 'Guidelines'), el('div', { class: 'guidelines small' }, project.guidelines));
}

function shortcutsPanel() {
  const rows = [['1–9', 'choose an option / label of the active question'], ['Enter', 'submit (Shift+Enter: new line)'],
    ['Del', 'remove the selected shape'], ['Arrows', 'nudge the selected box (Shift: 10 px, Alt: resize)'], ['Esc', 'deselect / abandon a polygon'], ['Space', 'play / pause audio (Ctrl+Space while typing)']];
  return el('details', { class: 'card' }, el('summary', {}, 'Keyboard shortcuts'),
    el('dl', { class: 'shortcuts' }, rows.flatMap(([k, v]) => [el('dt', {}, el('kbd', {}, k)), el('dd', {}, v)])));
}

// ---- answering ----------------------------------------------------------------------------

function collect() {
  const answer = {};
  let firstInvalid = null;
  for (const c of current.controls) {
    const v = c.value();
    const problem = v === undefined && c.spec.required ? 'This question needs an answer.' : (c.check ? c.check() : '');
    c.frame.setError(problem);
    if (problem && !firstInvalid) firstInvalid = c;
    if (v !== undefined) answer[c.spec.name] = v;
  }
  if (firstInvalid) {
    setActive(firstInvalid);
    firstInvalid.focus?.();
    return null;
  }
  return answer;
}

async function submit() {
  if (!current || submitting || feedbackOpen || switching) return;
  const answer = collect();
  if (!answer) {
    current.errorBox.textContent = '';
    current.errorBox.append(el('p', { class: 'notice bad small' }, 'Some questions still need an answer.'));
    return;
  }
  submitting = true;
  current.submitButton.disabled = true;
  const duration = Math.min(Math.round(performance.now() - current.shownAt), 86400000);
  try {
    const reply = await api('POST', `/v1/assignments/${current.task.assignment_id}/submit`, { answer, duration_ms: duration });
    submitted += 1;
    const count = document.getElementById('session-count');
    if (count) count.textContent = `${submitted} submitted this session`;
    startPrefetch();
    if (reply.feedback) {
      showFeedback(reply.feedback);
    } else {
      toast('Submitted');
      await nextTask();
    }
  } catch (e) {
    if (e instanceof ApiError && (e.code === 'lease_expired' || e.code === 'assignment_skipped')) {
      toast('This task expired before it was submitted; here is the next one.');
      await nextTask();
    } else if (e instanceof ApiError && e.status === 422) {
      const named = /control '([^']+)'/.exec(e.message);
      const control = named && current.controls.find((c) => c.spec.name === named[1]);
      if (control) control.frame.setError(e.message);
      current.errorBox.textContent = '';
      current.errorBox.append(el('p', { class: 'notice bad small' }, e.message));
    } else {
      showError(e);
    }
  } finally {
    submitting = false;
    if (current && !feedbackOpen) current.submitButton.disabled = false;
  }
}

function formatValue(spec, v) {
  if (v === null || v === undefined) return '(no answer)';
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) return JSON.stringify(v);
  switch (spec?.type) {
    case 'multi_choice': return v.join(', ') || '(none)';
    case 'bbox': return v.map((b) => `${b.label} at ${Math.round(b.x)},${Math.round(b.y)} size ${Math.round(b.w)}×${Math.round(b.h)}`).join('\n') || '(no boxes)';
    case 'audio_segments': return v.map((s) => `${s.label} ${Number(s.start).toFixed(2)}–${Number(s.end).toFixed(2)} s`).join('\n') || '(no segments)';
    case 'polygon': return `${v.length} polygon(s)`;
    case 'keypoints': return `${v.length} instance(s)`;
    default: return JSON.stringify(v);
  }
}

function showFeedback(fb) {
  feedbackOpen = true;
  const box = current.feedbackBox;
  const quiz = fb.quiz || {};
  const specs = Object.fromEntries(current.task.template.controls.map((c) => [c.name, c]));
  const expected = Object.entries(fb.expected || {}).map(([name, v]) =>
    el('div', {}, el('strong', {}, `${specs[name]?.title || name}: `), el('pre', {}, formatValue(specs[name], v))));
  let outcome = null;
  if (quiz.status === 'passed') outcome = el('p', { class: 'notice ok small' }, 'You passed the quiz. Real tasks start now.');
  else if (quiz.status === 'failed') outcome = el('p', { class: 'notice bad small' }, 'The quiz is over and the pass mark was not reached.');
  const continueButton = el('button', { type: 'button', class: 'primary', id: 'continue', onclick: () => closeFeedback() }, 'Continue ', el('kbd', {}, 'Enter'));
  box.append(el('section', { class: `notice ${fb.correct ? 'ok' : 'bad'} feedback stack`, role: 'status' },
    el('h2', {}, fb.correct ? '✓ Correct' : '✗ Not quite'),
    fb.correct ? null : el('div', {}, el('p', { class: 'small' }, 'The expected answer:'), expected),
    quiz.size ? el('p', { class: 'small muted', id: 'quiz-progress' },
      `Quiz: ${quiz.answered} of ${quiz.size} answered, ${quiz.correct} correct (pass mark ${Math.round((quiz.pass || 0) * 100)}%).`) : null,
    outcome, el('div', {}, continueButton)));
  current.submitButton.disabled = true;
  current.skipButton.disabled = true;
  continueButton.focus();
}

async function closeFeedback() {
  if (!feedbackOpen) return;
  feedbackOpen = false;
  await nextTask();
}

async function skip() {
  if (!current || submitting || feedbackOpen || switching) return;
  submitting = true;
  try {
    await api('POST', `/v1/assignments/${current.task.assignment_id}/skip`);
    toast('Skipped');
    await nextTask();
  } catch (e) {
    showError(e);
  } finally {
    submitting = false;
  }
}

// ---- keyboard ------------------------------------------------------------------------------

document.addEventListener('keydown', (event) => {
  if (!current || event.defaultPrevented) return;
  if (switching) { if (event.key === 'Enter' || /^[0-9]$/.test(event.key)) event.preventDefault(); return; }
  if (feedbackOpen) {
    if (event.key === 'Enter') { event.preventDefault(); closeFeedback(); }
    return;
  }
  const target = event.target;
  if (event.key === 'Enter' && !event.shiftKey && !event.ctrlKey && !event.altKey) {
    if (target instanceof HTMLButtonElement || target instanceof HTMLAnchorElement || target instanceof HTMLSelectElement) return;
    if (target instanceof HTMLInputElement && target.type === 'number') return;
    if (active?.busy?.() && active.key(event)) { event.preventDefault(); return; }
    event.preventDefault();
    submit();
    return;
  }
  if (current.stage instanceof AudioStage && current.stage.key(event)) { event.preventDefault(); return; }
  if (typingIn(target)) return;
  if (active && active.key(event)) event.preventDefault();
});

// ---- start ---------------------------------------------------------------------------------

async function start() {
  const me = await requireUser();
  if (!me) return;
  if (!Number.isInteger(projectId) || projectId <= 0) {
    message('bad', 'No project chosen', 'Open this page from the project list.', [el('a', { class: 'button', href: 'index.html' }, 'Projects')]);
    return;
  }
  try {
    project = await api('GET', `/v1/projects/${projectId}`);
  } catch (e) {
    showError(e);
    return;
  }
  document.title = `${project.name} — Tally`;
  const top = topbar(project.name, me);
  document.getElementById('top').replaceWith(top);
  top.querySelector('#sign-out')?.addEventListener('click', signOut);
  const begin = el('button', { type: 'button', class: 'primary', id: 'start', onclick: () => { prefetch = prefetch || prepareNext(); nextTask(); } }, 'Start labeling');
  clear(main).append(el('div', { class: 'center-page' }, el('section', { class: 'card stack', 'aria-labelledby': 'gl-title' },
    el('h1', { id: 'gl-title' }, project.name),
    el('h2', {}, 'Guidelines'),
    el('div', { class: 'guidelines' }, project.guidelines || 'No guidelines were given for this project.'),
    el('p', { class: 'muted small' }, 'Answers are checked against known answers now and then. Work carefully rather than fast.'),
    el('div', {}, begin))));
  prefetch = prepareNext();   // the first task loads while the guidelines are read
  begin.focus();
}

start().catch(showError);
