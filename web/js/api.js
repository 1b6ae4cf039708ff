// api.js -- the only way the pages talk to tallyd: the public /v1 API with the
// signed-in user's Bearer token. The token lives in localStorage (this browser
// profile only); media are fetched with the header and handed to <img>/<audio> as
// blob: URLs, since those elements cannot send an Authorization header.

const TOKEN_KEY = 'tally.token';

export function getToken() {
  return localStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(token) {
  localStorage.setItem(TOKEN_KEY, token.trim());
}

export function signOut() {
  localStorage.removeItem(TOKEN_KEY);
  location.href = 'index.html';
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function headers(extra) {
  return { Authorization: `Bearer ${getToken()}`, ...extra };
}

async function failure(res) {
  let code = `http_${res.status}`;
  let message = res.statusText || 'request failed';
  try {
    const body = await res.json();
    if (body && body.error) ({ code, message } = body.error);
  } catch { /* not JSON */ }
  return new ApiError(res.status, code, message);
}

// JSON request; resolves to the parsed body, or null for 204 No Content.
export async function api(method, path, body) {
  const init = { method, headers: headers() };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  return res.json();
}

// Every page of a paged list (bounded: at most `max` items).
export async function apiAll(path, max = 5000) {
  const items = [];
  let cursor = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api('GET', `${path}${sep}limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

// Fetches a protected resource and returns a blob: URL (revoke it when done).
export async function blobUrl(path) {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw await failure(res);
  return URL.createObjectURL(await res.blob());
}

// Downloads a protected resource as a file named `filename`.
export async function download(path, filename) {
  const url = await blobUrl(path);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60000);
}

// The signed-in user, or a redirect to the sign-in page (resolves to null then).
export async function requireUser(allowedRoles) {
  if (!getToken()) {
    location.href = `index.html?next=${encodeURIComponent(location.pathname.split('/').pop() + location.search)}`;
    return null;
  }
  try {
    const me = await api('GET', '/v1/me');
    if (allowedRoles && !allowedRoles.includes(me.role)) {
      location.href = 'index.html?denied=1';
      return null;
    }
    return me;
  } catch (e) {
    if (e.status === 401) {
      localStorage.removeItem(TOKEN_KEY);
      location.href = `index.html?expired=1`;
      return null;
    }
    throw e;
  }
}
