// Formatting and DOM helpers. Text always goes in as text (textContent), never as HTML:
// file names, error messages and finding values come from uploaded files.

const numbers = new Intl.NumberFormat();
const percents = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });
const dates = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export const CATEGORY_LABELS = {
  cmdb_export: 'CMDB export',
  app_discovery: 'Application discovery',
  infrastructure: 'Infrastructure',
  sensitive_data: 'Sensitive data',
};

export const PHASES = ['upload', 'validation', 'enrichment', 'complete'];

export function formatNumber(value) {
  return value === null || value === undefined ? '—' : numbers.format(value);
}

export function formatPercent(value) {
  return value === null || value === undefined ? '—' : percents.format(value / 100);
}

export function formatDate(value) {
  if (!value) return '—';
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? value : dates.format(date);
}

export function label(value) {
  if (!value) return '—';
  return CATEGORY_LABELS[value] || value.replaceAll('_', ' ');
}

// h('a', {href: '#/x', dataset: {flowId: 1}}, 'text', child) — a small element builder.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key === 'class') el.className = value;
    else if (key in el && typeof value !== 'string') el[key] = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// The four phases as an ordered list (done / current / failed / pending), with the percentage.
export function phaseProgress(flow) {
  const current = PHASES.indexOf(flow.current_phase);
  const state = flow.phase_state || {};
  const items = PHASES.map((phase, i) => {
    let status = 'pending';
    if ((state[phase] || {}).status === 'failed') status = 'failed';
    else if (flow.status === 'completed' || i < current) status = 'done';
    else if (i === current) status = flow.status === 'paused' ? 'paused' : 'current';
    return h('li', { class: `phase phase-${status}`, dataset: { phase, phaseStatus: status } },
      h('span', { class: 'phase-name' }, phase), h('span', { class: 'visually-hidden' }, ` (${status})`));
  });
  const pct = flow.progress_percentage ?? 0;
  return h('div', { class: 'progress' },
    h('ol', { class: 'phases', 'aria-label': 'Phases' }, items),
    h('progress', { max: '100', value: String(pct), 'aria-label': 'Progress' }),
    h('span', { class: 'pct', dataset: { field: 'progress' } }, formatPercent(pct)));
}
