// One flow: summary, counts, processing steps, timeline, and the validator's findings page by page.

import { json } from './api.js';
import { formatDate, formatNumber, h, label, phaseProgress } from './format.js';

export const FINDINGS_PAGE_SIZE = 10;

const VALIDATION_COUNTS = [
  ['record_count', 'Records'], ['valid_count', 'Valid'], ['invalid_count', 'Invalid'],
  ['error_count', 'Errors'], ['warning_count', 'Warnings'],
];
const ENRICHMENT_COUNTS = [
  ['rows_applied', 'Rows applied'], ['assets_created', 'Assets created'], ['assets_updated', 'Assets updated'],
  ['assets_unchanged', 'Assets unchanged'], ['dependencies_created', 'Dependencies created'],
  ['dependencies_updated', 'Dependencies updated'], ['dependencies_unchanged', 'Dependencies unchanged'],
  ['parked_edges', 'Parked dependencies'], ['resolved_edges', 'Resolved dependencies'],
  ['unmatched_rows', 'Unmatched rows'], ['duplicate_candidates', 'Duplicate candidates'],
  ['placeholders_created', 'Placeholders created'],
];

function counts(source, fields) {
  return h('dl', { class: 'counts' }, fields.filter(([key]) => source[key] !== undefined).map(([key, text]) =>
    h('div', {}, h('dt', {}, text), h('dd', { dataset: { field: key, value: String(source[key]) } },
      formatNumber(source[key])))));
}

function stepsTable(steps) {
  return h('table', { class: 'steps' },
    h('caption', {}, 'Processing steps'),
    h('thead', {}, h('tr', {}, ['Step', 'Status', 'Records', 'Description', 'Started', 'Completed']
      .map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, steps.map((s) => h('tr', { dataset: { step: s.step_name, status: s.status } },
      h('th', { scope: 'row' }, s.step_name), h('td', {}, s.status),
      h('td', { class: 'num' }, formatNumber(s.records_processed)),
      h('td', {}, s.error_message ? `${s.description || ''} — ${s.error_message}` : s.description || ''),
      h('td', {}, formatDate(s.started_at)), h('td', {}, formatDate(s.completed_at))))));
}

function timelineList(timeline) {
  return h('ol', { class: 'timeline', 'aria-label': 'Timeline' }, timeline.map((e) =>
    h('li', { dataset: { eventType: e.event_type } },
      h('time', { datetime: e.occurred_at }, formatDate(e.occurred_at)), ' ',
      h('strong', {}, e.event_type), e.phase ? ` · ${e.phase}` : '', ` · ${e.producer}`)));
}

// The findings section; keeps its page across re-renders of the flow.
export class Findings {
  constructor(importId) {
    this.importId = importId;
    this.page = 1;
    this.el = h('section', { class: 'findings', 'aria-labelledby': 'findings-title' });
  }

  async load(page = this.page) {
    const body = await json(
      `/v1/dashboard/imports/${this.importId}/issues?page=${page}&page_size=${FINDINGS_PAGE_SIZE}`);
    this.page = page;
    const pages = Math.max(1, Math.ceil(body.total / FINDINGS_PAGE_SIZE));
    const status = h('p', { class: 'pager-status', role: 'status', 'aria-live': 'polite',
      dataset: { page: String(page), pages: String(pages), total: String(body.total) } },
    `Page ${formatNumber(page)} of ${formatNumber(pages)} · ${formatNumber(body.total)} findings`);
    const prev = h('button', { type: 'button', class: 'secondary', disabled: page <= 1 }, 'Previous page');
    const next = h('button', { type: 'button', class: 'secondary', disabled: page >= pages }, 'Next page');
    prev.addEventListener('click', () => this.load(page - 1));
    next.addEventListener('click', () => this.load(page + 1));
    const table = body.items.length ? h('table', { class: 'issues' },
      h('caption', { class: 'visually-hidden' }, 'Validation findings'),
      h('thead', {}, h('tr', {}, ['Row', 'Column', 'Rule', 'Severity', 'Message', 'Value']
        .map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, body.items.map((i) => h('tr', { class: `severity-${i.severity}` },
        h('td', { class: 'num' }, formatNumber(i.row_number)), h('td', {}, i.column || '—'),
        h('td', {}, i.rule_id), h('td', {}, i.severity), h('td', {}, i.message), h('td', {}, i.value ?? '—')))))
      : h('p', { class: 'empty' }, 'No findings.');
    this.el.replaceChildren(h('h3', { id: 'findings-title' }, 'Validation findings'), table,
      h('div', { class: 'pager' }, prev, status, next));
  }
}

export async function renderFlow(container, flowId, findingsCache) {
  const flow = await json(`/v1/flows/${flowId}`);
  const { master, child } = flow;
  const state = (child && child.phase_state) || {};
  const upload = state.upload || {};
  const validation = state.validation || {};
  const enrichment = state.enrichment || {};
  const summary = { ...master, phase_state: state };
  const filename = upload.filename || (master.configuration || {}).filename || master.flow_name;
  document.getElementById('flow-title').textContent = `${filename} · ${label(master.import_category)}`;

  const parts = [
    h('dl', { class: 'summary' },
      h('div', {}, h('dt', {}, 'Status'), h('dd', { dataset: { field: 'status', value: master.status } },
        master.status, child && child.status !== master.status ? ` (${child.status.replaceAll('_', ' ')})` : '')),
      h('div', {}, h('dt', {}, 'Phase'), h('dd', {}, master.current_phase)),
      h('div', {}, h('dt', {}, 'Started'), h('dd', {}, formatDate(master.created_at))),
      h('div', {}, h('dt', {}, 'Completed'), h('dd', {}, formatDate(master.completed_at))),
      h('div', {}, h('dt', {}, 'Import'), h('dd', { class: 'mono' }, child ? child.data_import_id : '—'))),
    phaseProgress(summary),
  ];
  if (child && child.error_message) parts.push(h('p', { class: 'error', role: 'alert' }, child.error_message));
  parts.push(h('h3', {}, 'Records'),
    counts({ record_count: validation.record_count ?? upload.record_count, ...validation }, VALIDATION_COUNTS));
  parts.push(h('h3', {}, 'Enrichment'), enrichment.status === 'completed'
    ? counts(enrichment, ENRICHMENT_COUNTS)
    : h('p', { class: 'empty' }, validation.validate_only ? 'Validated only: nothing enriched.'
      : `Enrichment ${enrichment.status || 'not started'}.`));
  parts.push(stepsTable(flow.steps));

  let findings = findingsCache.get(flowId);
  if (!findings && child) {
    findings = new Findings(child.data_import_id);
    findingsCache.set(flowId, findings);
  }
  if (findings) {
    parts.push(findings.el);
    await findings.load();
  }
  parts.push(h('h3', {}, 'Timeline'), timelineList(flow.timeline));
  container.replaceChildren(...parts);
  container.dataset.version = String(master.version);
}
