// The dashboard: key prompt, upload tiles, live list of flows, flow page (#/flows/<id>).
// Query flag ?live=poll turns the event stream off (the polling fallback, on purpose).

import { Unauthorized, call, clearKey, describeError, getKey, json, setKey, whenUnauthorized } from './api.js';
import { renderFlow } from './flow.js';
import { formatDate, h, label, phaseProgress } from './format.js';
import { FlowStore, Live } from './live.js';

const ACCEPT = '.csv,.xlsx,.json,.ndjson,.jsonl,text/csv,application/json';
const store = new FlowStore();
const findingsCache = new Map();
let live = null;
let config = null;

const $ = (id) => document.getElementById(id);

function showMode(mode, seconds) {
  document.body.dataset.live = mode;
  $('live-state').textContent = {
    off: 'Not connected',
    connecting: 'Connecting…',
    stream: 'Live updates',
    polling: `Updating every ${seconds} s`,
  }[mode];
}

// --- the key -------------------------------------------------------------------------------------

function askForKey(message = '') {
  if (live) live.stop();
  $('forget-key').hidden = true;
  $('whoami').textContent = '';
  $('key-error').textContent = message;
  const dialog = $('key-dialog');
  if (!dialog.open) dialog.showModal();
  $('api-key').focus();
}

async function checkKey(key) {
  try {
    return await json('/v1/whoami', { key });
  } catch (error) {
    if (error instanceof Unauthorized) return null;
    throw error;
  }
}

$('key-form').addEventListener('submit', async (event) => {
  event.preventDefault();
  const key = $('api-key').value.trim();
  if (!key) {
    $('key-error').textContent = 'Enter a key.';
    return;
  }
  const who = await checkKey(key);
  if (!who) {
    $('key-error').textContent = 'This key is not valid (unknown, revoked or mistyped).';
    return;
  }
  setKey(key);
  $('api-key').value = '';
  $('key-dialog').close();
  begin(who);
});

// Without a key the page can show nothing: Escape does not dismiss the prompt.
$('key-dialog').addEventListener('cancel', (event) => event.preventDefault());

$('forget-key').addEventListener('click', () => {
  clearKey();
  store.replace([]);
  askForKey();
});

whenUnauthorized(() => askForKey('The key is no longer valid. Enter another one.'));

// --- upload tiles --------------------------------------------------------------------------------

async function upload(category, file, result) {
  result.dataset.state = 'uploading';
  result.replaceChildren(`Uploading ${file.name}…`);
  const form = new FormData();
  form.append('category', category);
  form.append('file', file, file.name);
  let response;
  try {
    response = await call('/v1/dashboard/imports', { method: 'POST', body: form });
  } catch (error) {
    result.dataset.state = 'error';
    result.replaceChildren(error instanceof Unauthorized ? 'Not uploaded: the key is not valid.'
      : `Not uploaded: ${error.message}`);
    return;
  }
  const body = await response.json().catch(() => null);
  if (response.ok) {
    result.dataset.state = 'uploaded';
    result.dataset.flowId = body.flow_id;
    result.replaceChildren(`Uploaded ${file.name}: `,
      h('a', { href: `#/flows/${body.flow_id}`, dataset: { flowId: body.flow_id } }, 'follow the import'));
    live.refresh();
  } else {
    result.dataset.state = 'rejected';
    result.replaceChildren(`Rejected ${file.name}: ${describeError(body, response.status)}`);
  }
}

function tile(category) {
  const id = `file-${category}`;
  const result = h('p', { class: 'result', role: 'status', 'aria-live': 'polite', dataset: { result: category } });
  const input = h('input', { type: 'file', id, accept: ACCEPT, class: 'visually-hidden' });
  const drop = h('div', { class: 'drop', dataset: { drop: category } },
    h('p', {}, 'Drop a file here or'), input,
    h('label', { for: id, class: 'button' }, 'Choose a file',
      h('span', { class: 'visually-hidden' }, ` for ${label(category)}`)));
  input.addEventListener('change', async () => {
    for (const file of input.files) await upload(category, file, result);
    input.value = '';
  });
  for (const type of ['dragenter', 'dragover']) {
    drop.addEventListener(type, (event) => {
      event.preventDefault();
      drop.classList.add('dragging');
    });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', async (event) => {
    event.preventDefault();
    drop.classList.remove('dragging');
    for (const file of event.dataTransfer.files) await upload(category, file, result);
  });
  const title = `tile-${category}-title`;
  return h('section', { class: 'tile', dataset: { category }, 'aria-labelledby': title },
    h('h3', { id: title }, label(category)), drop, result);
}

// --- the list and the flow page ------------------------------------------------------------------

function renderList() {
  const rows = store.sorted().map((flow) => {
    const file = (flow.phase_state && flow.phase_state.upload && flow.phase_state.upload.filename)
      || flow.flow_name || flow.flow_id;
    const status = flow.child_status && flow.child_status !== flow.status
      ? `${flow.status} (${flow.child_status.replaceAll('_', ' ')})` : flow.status;
    return h('tr', { dataset: { flowId: flow.flow_id, status: flow.status, version: String(flow.version) } },
      h('th', { scope: 'row' }, h('a', { href: `#/flows/${flow.flow_id}` }, file)),
      h('td', {}, label(flow.category)),
      h('td', { class: `status status-${flow.status}` }, status,
        flow.error_message ? h('span', { class: 'error-detail' }, flow.error_message) : null),
      h('td', {}, phaseProgress(flow)),
      h('td', {}, formatDate(flow.updated_at)));
  });
  $('flows').tBodies[0].replaceChildren(...rows);
  $('flows-empty').hidden = rows.length > 0;
}

let shownFlow = null;
let shownVersion = null;
let rendering = Promise.resolve();

function showFlow(flowId) {
  shownFlow = flowId;
  rendering = rendering.then(async () => {
    if (shownFlow !== flowId) return;
    const known = store.flows.get(flowId);
    shownVersion = known ? known.version : null;
    try {
      await renderFlow($('flow-body'), flowId, findingsCache);
    } catch (error) {
      if (!(error instanceof Unauthorized)) {
        $('flow-body').replaceChildren(h('p', { class: 'error', role: 'alert' }, `Cannot show this import: ${error.message}`));
      }
    }
  });
}

function route() {
  const match = location.hash.match(/^#\/flows\/([0-9a-f-]{36})$/);
  $('list-view').hidden = Boolean(match);
  $('flow-view').hidden = !match;
  if (match) {
    $('flow-body').replaceChildren();
    $('flow-title').textContent = 'Import';
    showFlow(match[1]);
    $('flow-title').focus();
  } else {
    shownFlow = null;
  }
}

store.subscribe(() => {
  renderList();
  // The open flow changed: show its new state (the findings keep their page).
  const known = shownFlow && store.flows.get(shownFlow);
  if (known && known.version !== shownVersion) showFlow(shownFlow);
});

window.addEventListener('hashchange', route);

// --- start ---------------------------------------------------------------------------------------

function begin(who) {
  $('whoami').textContent = `Engagement ${who.engagement_id}`;
  $('forget-key').hidden = false;
  const streamAllowed = new URLSearchParams(location.search).get('live') !== 'poll';
  live = new Live(store, { streamAllowed, pollActive: config.poll_active_s, pollIdle: config.poll_idle_s,
    onMode: showMode });
  live.start();
  route();
}

async function main() {
  config = await (await fetch('/v1/dashboard/config')).json();
  $('tiles').replaceChildren(...config.categories.map(tile));
  renderList();
  const key = getKey();
  const who = key ? await checkKey(key) : null;
  if (who) begin(who);
  else {
    clearKey();
    askForKey();
  }
}

main();
