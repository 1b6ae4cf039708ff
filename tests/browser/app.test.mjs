// app.test.mjs -- the web client end to end: a real tallyd on a free loopback port with
// a temp data dir (as tests/integration/harness.c starts it), projects made through the
// API, and Debian's Chromium driven headless by playwright-core as a crowd worker and
// a manager. What the pages did is checked through the API (the stored judgments).
// Screenshots of each page go to $SCREENSHOT_DIR.
//
// Environment (set by run.sh): TALLYD, SCREENSHOT_DIR, CHROMIUM, TALLY_TEST_DATA.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, readFileSync, existsSync, rmSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const TALLYD = process.env.TALLYD;
const SHOTS = process.env.SCREENSHOT_DIR;
const DATA = process.env.TALLY_TEST_DATA;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let server;        // {proc, dir, base, admin, logPath}
let model;         // a fake Label Studio ML backend (node:http) for the pre-label test
let browser;
let workerToken;
let managerToken;
const projects = {};

// ---- tallyd ------------------------------------------------------------------------------

async function startTallyd() {
  const dir = mkdtempSync(join(tmpdir(), 'tally-browser-'));
  const logPath = join(dir, 'tallyd.log');
  const log = openSync(logPath, 'a');
  const proc = spawn(TALLYD, ['--data', dir, '--listen', '127.0.0.1:0', '--job-threads', '2'], { stdio: ['ignore', log, log] });
  const addrPath = join(dir, 'tallyd.addr');
  for (let i = 0; i < 200; i++) {
    if (proc.exitCode !== null) break;
    if (existsSync(addrPath)) {
      const addr = readFileSync(addrPath, 'utf8').trim();
      const base = `http://${addr}`;
      try {
        const res = await fetch(`${base}/healthz`);
        if (res.ok) return { proc, dir, base, logPath, admin: readFileSync(join(dir, 'admin.token'), 'utf8').trim() };
      } catch { /* not listening yet */ }
    }
    await sleep(100);
  }
  throw new Error(`tallyd did not start:\n${readFileSync(logPath, 'utf8').slice(-3000)}`);
}

async function stopTallyd() {
  if (!server) return;
  const { proc } = server;
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  proc.kill('SIGTERM');
  const timeout = sleep(20000).then(() => ({ timeout: true }));
  const result = await Promise.race([exited, timeout]);
  if (result.timeout) proc.kill('SIGKILL');
  const log = readFileSync(server.logPath, 'utf8');
  const sanitizer = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:/.test(log);
  if (!sanitizer && result.code === 0 && !process.env.TALLY_BROWSER_KEEP) rmSync(server.dir, { recursive: true, force: true });
  assert.ok(!result.timeout, 'tallyd stops within 20 s of SIGTERM');
  assert.ok(!sanitizer, `sanitizer report in the tallyd log:\n${log.slice(-4000)}`);
  assert.equal(result.code, 0, `tallyd exit status (log in ${server.logPath})`);
}

async function call(method, path, token, body, expect) {
  const init = { method, headers: { Authorization: `Bearer ${token}` } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(`${server.base}${path}`, init);
  const text = await res.text();
  if (expect !== undefined) assert.equal(res.status, expect, `${method} ${path}: ${text}`);
  return text ? JSON.parse(text) : null;
}

async function upload(token, batch, name, file) {
  const res = await fetch(`${server.base}/v1/batches/${batch}/files/${encodeURIComponent(name)}`, {
    method: 'PUT', headers: { Authorization: `Bearer ${token}` }, body: readFileSync(join(DATA, file)) });
  assert.equal(res.status, 201, `upload ${name}: ${await res.text()}`);
}

// A project with the given files, all accepted; returns {id, items (by file name)}.
async function makeProject(body, files, beforeIngest) {
  const p = await call('POST', '/v1/projects', managerToken, body, 201);
  if (beforeIngest) await beforeIngest(p.id);
  const batch = await call('POST', `/v1/projects/${p.id}/batches`, managerToken, { name: 'first', source: { kind: 'upload' } }, 201);
  for (const [name, file] of files) await upload(managerToken, batch.id, name, file);
  await call('POST', `/v1/batches/${batch.id}/close`, managerToken, undefined, 200);
  for (let i = 0; i < 600; i++) {
    const b = await call('GET', `/v1/batches/${batch.id}`, managerToken, undefined, 200);
    if (b.state === 'done') {
      assert.equal(b.accepted, files.length, JSON.stringify(b));
      break;
    }
    assert.notEqual(b.state, 'failed', JSON.stringify(b));
    await sleep(100);
  }
  const list = await call('GET', `/v1/projects/${p.id}/items`, managerToken, undefined, 200);
  return { id: p.id, items: Object.fromEntries(list.items.map((it) => [it.name, it])) };
}

async function judgments(projectId) {
  return (await call('GET', `/v1/projects/${projectId}/judgments`, managerToken, undefined, 200)).items;
}

// A Label Studio ML backend that proposes one "cat" box at 10% / 20% of the image,
// 50% x 25% of its size, for every task.
async function startModel() {
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk) => { body += chunk; });
    req.on('end', () => {
      const reply = (status, obj) => { res.writeHead(status, { 'Content-Type': 'application/json' }); res.end(JSON.stringify(obj)); };
      if (req.method === 'GET' && req.url === '/health') return reply(200, { status: 'UP' });
      if (req.method === 'POST' && req.url === '/setup') return reply(200, { model_version: 'boxes-1' });
      if (req.method === 'POST' && req.url === '/predict') {
        const tasks = JSON.parse(body).tasks || [];
        return reply(200, { results: tasks.map(() => ({ score: 0.8, model_version: 'boxes-1', result: [{
          from_name: 'objects', to_name: 'image', type: 'rectanglelabels',
          value: { x: 10, y: 20, width: 50, height: 25, rotation: 0, rectanglelabels: ['cat'] }, score: 0.8 }] })) });
      }
      return reply(404, {});
    });
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return srv;
}

// ---- browser -------------------------------------------------------------------------------

// A page that records console errors and uncaught exceptions; check with assertClean.
async function openPage() {
  const context = await browser.newContext({ viewport: { width: 1360, height: 860 }, acceptDownloads: true });
  const page = await context.newPage();
  page.problems = [];
  page.on('console', (msg) => { if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`); });
  page.on('pageerror', (err) => page.problems.push(`exception: ${err.message}`));
  return page;
}

function assertClean(page) {
  assert.deepEqual(page.problems, [], 'no console errors or exceptions');
}

async function signIn(page, token) {
  await page.goto(`${server.base}/app/`);
  await page.getByLabel('Access token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Projects' }).waitFor();
}

async function startWork(page, projectId) {
  await page.goto(`${server.base}/app/work.html?project=${projectId}`);
  await page.locator('#start').click();
  await page.locator('#controls .control').first().waitFor();
}

// Screen position of an image pixel (x, y) on the image stage.
async function imagePoint(page, width, height, x, y) {
  const box = await page.locator('.image-stage svg').boundingBox();
  return { x: box.x + (x * box.width) / width, y: box.y + (y * box.height) / height };
}

async function drag(page, from, to) {
  await page.mouse.move(from.x, from.y);
  await page.mouse.down();
  await page.mouse.move((from.x + to.x) / 2, (from.y + to.y) / 2, { steps: 4 });
  await page.mouse.move(to.x, to.y, { steps: 4 });
  await page.mouse.up();
}

const near = (actual, expected, tolerance, what) =>
  assert.ok(Math.abs(actual - expected) <= tolerance, `${what}: ${actual} is not within ${tolerance} of ${expected}`);

// ---- set-up --------------------------------------------------------------------------------

before(async () => {
  assert.ok(TALLYD && SHOTS && DATA, 'run through run.sh (TALLYD, SCREENSHOT_DIR, TALLY_TEST_DATA)');
  server = await startTallyd();
  managerToken = (await call('POST', '/v1/users', server.admin, { name: 'pm', role: 'manager' }, 201)).token;
  workerToken = (await call('POST', '/v1/users', server.admin, { name: 'ann', role: 'worker' }, 201)).token;
  const noQuiz = { overlap: 1, gold_rate: 0, quiz: { size: 0 } };
  projects.boxes = await makeProject({ name: 'Street objects', media: 'image', workflow: noQuiz,
    template: { controls: [{ name: 'objects', type: 'bbox', title: 'Box every object', labels: ['cat', 'dog'], required: true }] },
    guidelines: 'Draw one tight box around every cat and every dog.' }, [['street.jpg', 'photo.jpg']]);
  projects.audio = await makeProject({ name: 'Speech events', media: 'audio', workflow: noQuiz,
    template: { controls: [
      { name: 'events', type: 'audio_segments', title: 'Mark the speech', labels: ['speech', 'noise'], required: true },
      { name: 'transcript', type: 'transcription', title: 'What is said?', language: 'en' }] },
    guidelines: 'Mark where someone speaks and write down what is said.' }, [['speech.wav', 'speech.wav']]);
  projects.quiz = await makeProject({ name: 'Pets with a quiz', media: 'image',
    workflow: { overlap: 1, gold_rate: 0, quiz: { size: 2, pass: 0.5 }, min_trust: 0.5 },
    template: { controls: [{ name: 'label', type: 'choice', title: 'Which animal?', options: ['cat', 'dog'], required: true }] },
    guidelines: 'Choose the animal in the picture.' }, [['a.jpg', 'photo.jpg'], ['b.jpg', 'photo2.jpg'], ['c.jpg', 'gray.jpg']]);
  for (const name of ['a.jpg', 'b.jpg']) {
    await call('PUT', `/v1/items/${projects.quiz.items[name].id}/gold`, managerToken, { answer: { label: 'dog' } }, 200);
  }
  projects.shapes = await makeProject({ name: 'Every image control', media: 'image', workflow: noQuiz,
    template: { controls: [
      { name: 'outline', type: 'polygon', title: 'Outline the leaf', labels: ['leaf'], required: true },
      { name: 'face', type: 'keypoints', title: 'Landmarks', points: ['left', 'right', 'tip'], required: true },
      { name: 'tags', type: 'multi_choice', title: 'Tags', options: ['blurry', 'dark', 'outdoor'], min: 1 },
      { name: 'note', type: 'text', title: 'Anything else?', placeholder: 'optional' }] } },
  [['shapes.jpg', 'photo.jpg']]);
  projects.skip = await makeProject({ name: 'Skippable', media: 'image', workflow: noQuiz,
    template: { controls: [{ name: 'label', type: 'choice', options: ['yes', 'no'], required: true }] } },
  [['skip.jpg', 'photo2.jpg']]);
  model = await startModel();
  projects.prelabeled = await makeProject({ name: 'Pre-labeled boxes', media: 'image',
    workflow: { ...noQuiz, prelabel: { show: true, auto_accept: 1 } },
    template: { controls: [{ name: 'objects', type: 'bbox', title: 'Check the boxes', labels: ['cat', 'dog'], required: true }] },
    guidelines: 'The model drew boxes already: fix them.' }, [['pre.jpg', 'photo.jpg']], async (id) => {
    await call('POST', `/v1/projects/${id}/models`, managerToken,
      { name: 'detector', kind: 'remote', url: `http://127.0.0.1:${model.address().port}` }, 201);
  });
  const preItem = projects.prelabeled.items['pre.jpg'].id;
  for (let i = 0; i < 600; i++) {
    const preds = await call('GET', `/v1/items/${preItem}/predictions`, managerToken, undefined, 200);
    if (preds.items.some((x) => x.answer)) break;
    assert.ok(i < 599, 'the model pre-labels the item');
    await sleep(100);
  }
  browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    args: ['--no-sandbox', '--autoplay-policy=no-user-gesture-required', '--mute-audio'] });
});

after(async () => {
  await browser?.close();
  model?.close();
  await stopTallyd();
});

// ---- the tests -----------------------------------------------------------------------------

test('static files: content types, caching, redirects and refused paths', async () => {
  const root = await fetch(`${server.base}/app`, { redirect: 'manual' });
  assert.equal(root.status, 301);
  assert.equal(root.headers.get('location'), '/app/');
  const index = await fetch(`${server.base}/app/`);
  assert.equal(index.status, 200);
  assert.match(index.headers.get('content-type'), /^text\/html/);
  assert.match(index.headers.get('content-security-policy'), /script-src 'self'/);
  const js = await fetch(`${server.base}/app/js/work.js`);
  assert.match(js.headers.get('content-type'), /^text\/javascript/);
  const etag = js.headers.get('etag');
  assert.ok(etag);
  const again = await fetch(`${server.base}/app/js/work.js`, { headers: { 'If-None-Match': etag } });
  assert.equal(again.status, 304);
  for (const bad of ['/app/%2e%2e/CMakeLists.txt', '/app/..%2fCMakeLists.txt', '/app/.hidden', '/app/js//api.js', '/app/nope.html']) {
    const res = await fetch(`${server.base}${bad}`);
    assert.equal(res.status, 404, bad);
  }
  const templates = await (await fetch(`${server.base}/app/templates/predefined.json`)).json();
  assert.deepEqual(templates.templates.map((t) => t.id),
    ['image_classification', 'object_detection', 'keypoints', 'speech_transcription', 'audio_event_segmentation']);
});

test('a worker draws two boxes and submits; the judgment has their pixel coordinates', async () => {
  const page = await openPage();
  await signIn(page, workerToken);
  await page.screenshot({ path: join(SHOTS, 'signin-projects.png') });
  await startWork(page, projects.boxes.id);
  const { width, height } = projects.boxes.items['street.jpg'].media;
  assert.deepEqual([width, height], [640, 480]);
  await page.locator('.image-stage img').waitFor();

  // Box 1 (cat): drawn, then moved by (+20, +10). Box 2 (dog, number key 2): drawn,
  // then its bottom-right corner resized.
  await drag(page, await imagePoint(page, width, height, 60, 50), await imagePoint(page, width, height, 260, 210));
  await drag(page, await imagePoint(page, width, height, 160, 130), await imagePoint(page, width, height, 180, 140));
  await page.keyboard.press('Escape');   // deselect, so the number key picks the next box's label
  await page.keyboard.press('2');
  await drag(page, await imagePoint(page, width, height, 340, 200), await imagePoint(page, width, height, 540, 400));
  await drag(page, await imagePoint(page, width, height, 540, 400), await imagePoint(page, width, height, 580, 430));
  await page.locator('.shape-list li', { hasText: 'dog' }).waitFor();
  assert.equal(await page.locator('.image-stage rect.shape').count(), 2);
  await page.screenshot({ path: join(SHOTS, 'worker-boxes.png') });
  await page.keyboard.press('Enter');
  await page.getByText('No tasks right now').waitFor();

  const js = await judgments(projects.boxes.id);
  assert.equal(js.length, 1);
  const boxes = js[0].answer.objects;
  assert.equal(boxes.length, 2, JSON.stringify(boxes));
  const [cat, dog] = boxes;
  const tol = 2 * Math.ceil(width / 800);   // a screen pixel is about one image pixel here
  assert.equal(cat.label, 'cat');
  near(cat.x, 80, tol, 'cat x'); near(cat.y, 60, tol, 'cat y'); near(cat.w, 200, tol, 'cat w'); near(cat.h, 160, tol, 'cat h');
  assert.equal(dog.label, 'dog');
  near(dog.x, 340, tol, 'dog x'); near(dog.y, 200, tol, 'dog y'); near(dog.w, 240, tol, 'dog w'); near(dog.h, 230, tol, 'dog h');
  assert.ok(js[0].duration_ms > 0);
  assertClean(page);
  await page.context().close();
});

test('a pre-label is drawn as the starting answer and the worker corrects it', async () => {
  const page = await openPage();
  await signIn(page, workerToken);
  await startWork(page, projects.prelabeled.id);
  await page.locator('#prelabel-note').waitFor();
  assert.equal(await page.locator('.image-stage rect.shape').count(), 1);
  // Correct the model's box: drag its top-left corner from (64, 96) to (50, 80),
  // then add a dog box.
  const { width, height } = projects.prelabeled.items['pre.jpg'].media;
  await page.locator('.shape-list button', { hasText: '#1 cat' }).click();
  await drag(page, await imagePoint(page, width, height, 64, 96), await imagePoint(page, width, height, 50, 80));
  await page.keyboard.press('Escape');
  await page.keyboard.press('2');
  await drag(page, await imagePoint(page, width, height, 420, 300), await imagePoint(page, width, height, 500, 400));
  await page.screenshot({ path: join(SHOTS, 'worker-prelabel.png') });
  await page.locator('#submit').click();
  await page.getByText('No tasks right now').waitFor();
  const [j] = await judgments(projects.prelabeled.id);
  const [cat, dog] = j.answer.objects;
  assert.equal(cat.label, 'cat');
  near(cat.x, 50, 2, 'corrected x'); near(cat.y, 80, 2, 'corrected y');
  near(cat.w, 334, 2, 'corrected w'); near(cat.h, 136, 2, 'corrected h');
  assert.equal(dog.label, 'dog');
  near(dog.x, 420, 2, 'dog x'); near(dog.w, 80, 2, 'dog w');
  assertClean(page);
  await page.context().close();
});

test('polygons, keypoints, multiple choice and text answer through the same page', async () => {
  const page = await openPage();
  await signIn(page, workerToken);
  await startWork(page, projects.shapes.id);
  const { width, height } = projects.shapes.items['shapes.jpg'].media;
  const at = (x, y) => imagePoint(page, width, height, x, y);
  const click = async (x, y) => { const p = await at(x, y); await page.mouse.click(p.x, p.y); };
  // A triangle, closed by clicking its first point.
  for (const [x, y] of [[100, 100], [300, 120], [200, 300], [100, 100]]) await click(x, y);
  assert.equal(await page.locator('.image-stage polygon.shape').count(), 1);
  // Keypoints: activate the control, place "left" and "tip", mark "right" not visible.
  await page.locator('[data-control=face] h3').click();
  await click(400, 200);
  await page.getByRole('button', { name: 'Not visible' }).click();
  await click(450, 260);
  await page.locator('[data-control=tags] h3').click();
  await page.keyboard.press('3');                     // "outdoor"
  await page.getByRole('textbox', { name: 'Anything else?' }).fill('a ladybird');
  await page.screenshot({ path: join(SHOTS, 'worker-shapes.png') });
  await page.getByRole('textbox', { name: 'Anything else?' }).press('Enter');
  await page.getByText('No tasks right now').waitFor();
  const [j] = await judgments(projects.shapes.id);
  assert.equal(j.answer.outline.length, 1);
  assert.equal(j.answer.outline[0].label, 'leaf');
  assert.equal(j.answer.outline[0].points.length, 3);
  near(j.answer.outline[0].points[1][0], 300, 2, 'polygon vertex x');
  const [inst] = j.answer.face;
  assert.equal(inst.points.length, 3);
  near(inst.points[0][0], 400, 2, 'left x');
  assert.equal(inst.points[1], null);
  near(inst.points[2][1], 260, 2, 'tip y');
  assert.deepEqual(j.answer.tags, ['outdoor']);
  assert.equal(j.answer.note, 'a ladybird');
  assertClean(page);
  await page.context().close();
});

test('a worker marks an audio segment on the waveform and transcribes it', async () => {
  const page = await openPage();
  await signIn(page, workerToken);
  await startWork(page, projects.audio.id);
  const duration = projects.audio.items['speech.wav'].media.duration;
  const wave = page.locator('.waveform');
  await wave.locator('path.peaks').waitFor();
  const box = await wave.boundingBox();
  const at = (f) => ({ x: box.x + f * box.width, y: box.y + box.height / 2 });
  await drag(page, at(0.2), at(0.55));
  await page.locator('.waveform rect.segment').waitFor();
  // Adjust the end edge a little to the right.
  await drag(page, at(0.55), at(0.6));
  await page.getByRole('textbox', { name: 'What is said?' }).fill('hello world');
  await page.locator('.transport select').selectOption('0.75');
  await page.screenshot({ path: join(SHOTS, 'worker-audio.png') });
  await page.locator('#submit').click();
  await page.getByText('No tasks right now').waitFor();

  const js = await judgments(projects.audio.id);
  assert.equal(js.length, 1);
  const [seg] = js[0].answer.events;
  assert.equal(js[0].answer.events.length, 1);
  assert.equal(seg.label, 'speech');
  near(seg.start, 0.2 * duration, 0.05, 'segment start');
  near(seg.end, 0.6 * duration, 0.05, 'segment end');
  assert.equal(js[0].answer.transcript, 'hello world');
  assertClean(page);
  await page.context().close();
});

test('a worker answers quiz questions and sees the feedback', async () => {
  const page = await openPage();
  await signIn(page, workerToken);
  await startWork(page, projects.quiz.id);
  await page.locator('.badge.quiz').waitFor();
  await page.keyboard.press('1');   // "cat": wrong, both test questions are dogs
  await page.keyboard.press('Enter');
  const feedback = page.locator('#feedback .feedback');
  await feedback.waitFor();
  assert.match(await feedback.innerText(), /Not quite/);
  assert.match(await feedback.innerText(), /Which animal\?: *\n*dog/);
  assert.match(await page.locator('#quiz-progress').innerText(), /1 of 2 answered, 0 correct/);
  await page.screenshot({ path: join(SHOTS, 'worker-quiz-feedback.png') });
  await page.keyboard.press('Enter');   // continue
  await feedback.waitFor({ state: 'detached' });
  await page.locator('.badge.quiz').waitFor();
  await page.keyboard.press('2');
  await page.keyboard.press('Enter');
  await page.getByText('✓ Correct').waitFor();
  await page.getByText('You passed the quiz').waitFor();
  await page.keyboard.press('Enter');
  await page.locator('.badge.work').waitFor();   // real work now
  const js = await judgments(projects.quiz.id);
  assert.deepEqual(js.map((j) => j.answer.label).sort(), ['cat', 'dog']);
  assertClean(page);
  await page.context().close();
});

test('a worker skips a task, and a required answer is asked for before submitting', async () => {
  const page = await openPage();
  await signIn(page, workerToken);
  await startWork(page, projects.skip.id);
  await page.keyboard.press('Enter');   // nothing chosen: the page says so, nothing is sent
  await page.getByText('This question needs an answer.').waitFor();
  await page.locator('#skip').click();
  await page.getByText('No tasks right now').waitFor();
  const mine = await call('GET', '/v1/me/stats', workerToken, undefined, 200);
  const row = mine.items.find((x) => x.project_id === projects.skip.id);
  assert.equal(row.skipped, 1);
  assert.equal(row.judgments, 0);
  assertClean(page);
  await page.context().close();
});

test("the manager console shows the project's counts, batches, workers and exports", async () => {
  const page = await openPage();
  await signIn(page, managerToken);
  await page.getByRole('link', { name: 'Open the manager console' }).waitFor();
  await page.goto(`${server.base}/app/console.html#project=${projects.boxes.id}`);
  await page.locator('#project-title', { hasText: 'Street objects' }).waitFor();
  // Aggregation runs in the background: wait for the item to be done.
  for (let i = 0; i < 600; i++) {
    const stats = await call('GET', `/v1/projects/${projects.boxes.id}/stats`, managerToken, undefined, 200);
    if (stats.items.done === 1) break;
    await sleep(100);
  }
  await page.reload();
  await page.locator('#stat-items').waitFor();
  assert.equal(await page.locator('#stat-items').innerText(), '1');
  assert.equal(await page.locator('#stat-judgments').innerText(), '1');
  assert.match(await page.locator('#state-legend [data-state=done]').innerText(), /Done\s*1/);
  await page.locator('#throughput', { hasText: '1 judgment in this window' }).waitFor();
  // The worker table lists ann's pseudonym with one judgment.
  const workerRow = page.locator('section[aria-label=Workers] tbody tr');
  await workerRow.first().waitFor();
  assert.equal(await workerRow.count(), 1);
  assert.match(await workerRow.innerText(), /w_[0-9a-f]+/);
  // The batch reports: the first batch, then one whose files were all rejected.
  await page.locator('section[aria-label=Batches] tbody tr').first().click();
  await page.locator('#batch-report', { hasText: '1 accepted' }).waitFor();
  const bad = await call('POST', `/v1/projects/${projects.boxes.id}/batches`, managerToken, { name: 'broken files', source: { kind: 'upload' } }, 201);
  await upload(managerToken, bad.id, 'cut-off.jpg', 'truncated.jpg');
  await upload(managerToken, bad.id, 'not-a-photo.jpg', 'png_named.jpg');
  await call('POST', `/v1/batches/${bad.id}/close`, managerToken, undefined, 200);
  for (let i = 0; i < 300 && (await call('GET', `/v1/batches/${bad.id}`, managerToken, undefined, 200)).state !== 'done'; i++) await sleep(100);
  await page.reload();
  await page.locator('section[aria-label=Batches] tbody tr', { hasText: 'broken files' }).click();
  await page.locator('#batch-report', { hasText: '2 rejected' }).waitFor();
  await page.getByRole('cell', { name: 'not-a-photo.jpg', exact: true }).waitFor();
  await page.locator('#batch-report', { hasText: 'extension_mismatch' }).waitFor();
  // An export of the done results, downloaded.
  await page.locator('#export-format').selectOption('csv');
  await page.locator('#export-done').check();
  await page.locator('#export-media').uncheck();
  await page.locator('#create-export').click();
  const downloadButton = page.locator('#export-list button', { hasText: 'Download' });
  await downloadButton.waitFor({ timeout: 30000 });
  await page.locator('.toast').waitFor({ state: 'hidden' });
  await page.screenshot({ path: join(SHOTS, 'console.png'), fullPage: true });
  const [file] = await Promise.all([page.waitForEvent('download'), downloadButton.click()]);
  assert.match(file.suggestedFilename(), /export\d+-csv\.csv$/);
  const saved = join(SHOTS, 'export.csv');
  await file.saveAs(saved);
  assert.match(readFileSync(saved, 'utf8'), /_unit_id/);
  assertClean(page);
  await page.context().close();
});

test('the manager starts a project from a predefined template', async () => {
  const page = await openPage();
  await signIn(page, managerToken);
  await page.goto(`${server.base}/app/console.html`);
  await page.locator('#new-project').click();
  await page.locator('#np-template').selectOption('speech_transcription');
  await page.locator('#np-name').fill('Podcast transcripts');
  await page.screenshot({ path: join(SHOTS, 'console-new-project.png') });
  await page.getByRole('button', { name: 'Create project' }).click();
  await page.locator('#project-title', { hasText: 'Podcast transcripts' }).waitFor();
  const list = await call('GET', '/v1/projects', managerToken, undefined, 200);
  const made = list.items.find((p) => p.name === 'Podcast transcripts');
  assert.equal(made.media, 'audio');
  assert.equal(made.template.controls[0].type, 'transcription');
  assertClean(page);
  await page.context().close();
});
