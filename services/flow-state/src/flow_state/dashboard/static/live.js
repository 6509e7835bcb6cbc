// The live list's data: flow statuses from the event stream, or from polling when there is none.
//
// The stream is read with fetch() and a stream reader rather than EventSource: EventSource cannot
// send the Authorization header, and the key must not go into a URL (URLs end up in logs).

import { Unauthorized, call } from './api.js';

export const ACTIVE = new Set(['running']);

// The latest status of each flow; a status only replaces an older version of the same flow,
// since the snapshot and the stream can overlap.
export class FlowStore {
  constructor() {
    this.flows = new Map();
    this.listeners = new Set();
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  notify(changed) {
    for (const listener of this.listeners) listener(changed);
  }

  replace(items) {
    const next = new Map();
    for (const item of items) {
      const seen = this.flows.get(item.flow_id);
      next.set(item.flow_id, seen && seen.version > item.version ? seen : { ...seen, ...item });
    }
    this.flows = next;
    this.notify(null);
  }

  update(status) {
    const seen = this.flows.get(status.flow_id);
    if (seen && seen.version >= status.version) return;
    this.flows.set(status.flow_id, { created_at: status.updated_at, ...seen, ...status });
    this.notify(status.flow_id);
  }

  sorted() {
    return [...this.flows.values()].sort((a, b) =>
      Date.parse(b.created_at) - Date.parse(a.created_at) || (a.flow_id < b.flow_id ? -1 : 1));
  }

  anyActive() {
    return [...this.flows.values()].some((f) => ACTIVE.has(f.status));
  }
}

// Parse a text/event-stream body: calls onEvent(name, data) per event until the body ends.
export async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll('\r\n', '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue; // keep-alive comment
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const text = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') name = text;
        else if (field === 'data') data.push(text);
      }
      if (data.length) onEvent(name, JSON.parse(data.join('\n')));
    }
  }
}

// Keeps the store current: the event stream when allowed and available, polling otherwise
// (every pollActive seconds while a flow runs, pollIdle while all wait or are done).
export class Live {
  constructor(store, { streamAllowed, pollActive, pollIdle, onMode }) {
    this.store = store;
    this.streamAllowed = streamAllowed;
    this.pollActive = pollActive;
    this.pollIdle = pollIdle;
    this.onMode = onMode;
    this.abort = null;
    this.pollTimer = null;
    this.retryTimer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    if (this.streamAllowed) this.connect();
    else this.poll();
  }

  stop() {
    this.stopped = true;
    if (this.abort) this.abort.abort();
    clearTimeout(this.pollTimer);
    clearTimeout(this.retryTimer);
    this.onMode('off');
  }

  // After an upload: in polling mode show the new flow now rather than at the next tick.
  refresh() {
    if (this.mode === 'polling') this.poll();
  }

  setMode(mode, detail) {
    this.mode = mode;
    this.onMode(mode, detail);
  }

  async connect() {
    this.abort = new AbortController();
    this.setMode('connecting');
    try {
      const response = await call('/v1/dashboard/stream', {
        headers: { Accept: 'text/event-stream' }, signal: this.abort.signal });
      if (!response.ok) throw new Error(`stream: HTTP ${response.status}`);
      clearTimeout(this.pollTimer);
      this.setMode('stream');
      await readEvents(response.body, (name, data) => {
        if (name === 'snapshot') this.store.replace(data.items);
        else if (name === 'status') this.store.update(data);
      });
      throw new Error('stream ended');
    } catch (error) {
      if (this.stopped || error instanceof Unauthorized) return;
      // No stream (a proxy that buffers, a restart, a network change): poll, and try the stream again later.
      this.poll();
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => { if (!this.stopped) this.connect(); }, 30_000);
    }
  }

  async poll() {
    clearTimeout(this.pollTimer);
    if (this.stopped) return;
    try {
      const body = await (await call('/v1/dashboard/flows')).json();
      if (this.mode === 'stream') return; // the stream came back meanwhile
      this.store.replace(body.items);
    } catch (error) {
      if (error instanceof Unauthorized) return;
    }
    if (this.stopped || this.mode === 'stream') return;
    const seconds = this.store.anyActive() ? this.pollActive : this.pollIdle;
    this.setMode('polling', seconds);
    this.pollTimer = setTimeout(() => this.poll(), seconds * 1000);
  }
}
