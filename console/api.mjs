import { useEffect, useState } from './preact-htm.mjs';

// The console's only door to the server: same-origin fetch under the session
// cookie, with the session's CSRF token on every request that changes state.
let csrf = null;

export function setCsrf(value) {
  csrf = value;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `the server answered ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export async function api(method, path, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new ApiError(res.status, data);
  return data;
}

export const enc = encodeURIComponent;

/** A time as the operator reads it: UTC, to the second. */
export function when(iso) {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '—';
}

/**
 * A page's data: fetched when `path` changes, and again by `reload` after an
 * action; `error` holds the server's problem detail.
 */
export function useResource(path) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const reload = () => api('GET', path).then((value) => { setError(null); setData(value); }, (err) => setError(err.message));
  useEffect(() => {
    setData(null);
    setError(null);
    reload();
  }, [path]);
  return { data, error, reload };
}
