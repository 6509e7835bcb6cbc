// Calls to flow-state with the API key. The key lives in sessionStorage: it survives reloads of
// this tab but not the tab itself, and no other tab or site can read it.

const STORAGE_KEY = 'tributary.apiKey';

export class Unauthorized extends Error {
  name = 'Unauthorized';
}

let onUnauthorized = () => {};

export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

export function getKey() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function setKey(key) {
  sessionStorage.setItem(STORAGE_KEY, key);
}

export function clearKey() {
  sessionStorage.removeItem(STORAGE_KEY);
}

export function authHeaders(key = getKey()) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// fetch() with the key; a 401 forgets the key and asks for another one.
export async function call(path, { method = 'GET', body, headers = {}, signal, key } = {}) {
  const response = await fetch(path, { method, body, signal, headers: { ...headers, ...authHeaders(key) } });
  if (response.status === 401) {
    if (!key) {
      clearKey();
      onUnauthorized();
    }
    throw new Unauthorized('the API key is not valid');
  }
  return response;
}

export async function json(path, options) {
  const response = await call(path, options);
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// A rejected upload answers {detail: {code, message, row, column}}; other errors a string detail.
export function describeError(body, status) {
  const detail = body && body.detail;
  if (detail && typeof detail === 'object' && !Array.isArray(detail)) {
    const where = [detail.row != null ? `row ${detail.row}` : null,
      detail.column ? `column ${detail.column}` : null].filter(Boolean).join(', ');
    return where ? `${detail.message} (${where})` : detail.message || detail.code;
  }
  if (typeof detail === 'string') return detail;
  return `HTTP ${status}`;
}
