// home.js -- the sign-in page (index.html): takes a token, checks it with /v1/me,
// then lists the projects a worker can label and links managers to the console.
import { api, apiAll, getToken, setToken, signOut, ApiError } from './api.js';
import { el, clear } from './ui.js';

const params = new URLSearchParams(location.search);

function showSignIn(message) {
  document.getElementById('home').hidden = true;
  document.getElementById('signin').hidden = false;
  const box = document.getElementById('signin-message');
  clear(box);
  if (message) box.append(el('p', { class: 'notice bad' }, message));
  document.getElementById('token').focus();
}

async function showHome() {
  let me;
  try {
    me = await api('GET', '/v1/me');
  } catch (e) {
    localStorage.removeItem('tally.token');
    return showSignIn(e instanceof ApiError && e.status === 401 ? 'That token was not accepted.' : e.message);
  }
  const next = params.get('next');
  if (next && /^[a-z]+\.html(\?[\w=&%.-]*)?$/.test(next)) {
    location.href = next;
    return;
  }
  document.getElementById('signin').hidden = true;
  document.getElementById('home').hidden = false;
  const staff = me.role === 'admin' || me.role === 'manager';
  document.getElementById('console-link').hidden = !staff;
  document.getElementById('home-intro').textContent =
    `Signed in as ${me.name} (${me.role}). Choose a project to label.`;
  const list = clear(document.getElementById('projects'));
  const projects = await apiAll('/v1/projects');
  const active = projects.filter((p) => p.state === 'active');
  if (!active.length) list.append(el('li', { class: 'muted' }, 'No project is open for labeling right now.'));
  for (const p of active) {
    list.append(el('li', {},
      el('div', {}, el('strong', {}, p.name), el('div', { class: 'muted small' }, `${p.media} · ${p.template.controls.length} question${p.template.controls.length === 1 ? '' : 's'}`)),
      el('a', { class: 'button primary', href: `work.html?project=${p.id}` }, 'Start labeling')));
  }
}

document.getElementById('signin-form').addEventListener('submit', (e) => {
  e.preventDefault();
  setToken(document.getElementById('token').value);
  showHome();
});
document.getElementById('sign-out').addEventListener('click', signOut);

if (params.get('expired')) showSignIn('Your session ended. Please sign in again.');
else if (params.get('denied')) { showHome(); }
else if (getToken()) showHome();
else showSignIn();
