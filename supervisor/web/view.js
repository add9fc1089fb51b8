// Small helpers to build the page's elements from data: text is always set as text, never as HTML.

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'className') element.className = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const STATUS_LOOK = {
  created: { icon: '◷', word: 'Queued' },
  in_progress: { icon: '◔', word: 'In progress' },
  completed: { icon: '✓', word: 'Completed' },
  failed: { icon: '✕', word: 'Failed' },
  cancelled: { icon: '⊘', word: 'Cancelled' },
  archived: { icon: '▣', word: 'Archived' },
};

/** The status icon, coloured by public status, with its word for screen readers. */
export function statusIcon(task) {
  const look = STATUS_LOOK[task.publicStatus] ?? STATUS_LOOK.created;
  return h(
    'span',
    { className: `status status-${task.publicStatus}`, title: task.status },
    h('span', { 'aria-hidden': 'true' }, look.icon),
    h('span', { className: 'status-word' }, look.word),
  );
}

const relative = new Intl.RelativeTimeFormat('en', { numeric: 'auto' });
const UNITS = [
  ['year', 31536000],
  ['month', 2592000],
  ['week', 604800],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

export function ago(iso, now = Date.now()) {
  const seconds = (Date.parse(iso) - now) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size || unit === 'second')
      return relative.format(Math.round(seconds / size), unit);
  }
  return '';
}

/** "Started 2 minutes ago", "Completed 5 seconds ago"... as TAO's list words it. */
export function when(task) {
  switch (task.publicStatus) {
    case 'created':
      return `Queued ${ago(task.createdAt)}`;
    case 'in_progress':
      return `Started ${ago(task.startedAt ?? task.updatedAt)}`;
    case 'completed':
      return `Completed ${ago(task.finishedAt ?? task.updatedAt)}`;
    case 'failed':
      return `Failed ${ago(task.finishedAt ?? task.updatedAt)}`;
    case 'cancelled':
      return `Cancelled ${ago(task.updatedAt)}`;
    default:
      return `Archived ${ago(task.updatedAt)}`;
  }
}

export function progressBar(task) {
  if (task.publicStatus !== 'in_progress' || task.progress === null) return '';
  const percent = Math.round(task.progress * 100);
  return h(
    'div',
    { className: 'progress-cell' },
    h('progress', {
      max: 100,
      value: percent,
      'aria-label': `Progress of ${task.label}`,
    }),
    h('span', { className: 'progress-text' }, `${percent}%`),
  );
}

export function megabytes(bytes) {
  return `${(bytes / 1048576).toFixed(0)} MB`;
}

/** A report and its children as nested lists. */
export function reportTree(report) {
  if (!report) return h('p', {}, 'No report yet.');
  const node = (r) =>
    h(
      'li',
      { className: `report report-${r.type}` },
      h('span', { className: 'report-type' }, r.type),
      ' ',
      r.message,
      r.data !== undefined ? h('pre', {}, JSON.stringify(r.data, null, 2)) : null,
      r.children?.length ? h('ul', {}, r.children.map(node)) : null,
    );
  return h('ul', { className: 'report-tree' }, node(report));
}

/** A small line chart of waiting tasks, with bars of tasks ended per sample. */
export function sparkline(history, label) {
  const width = 120;
  const height = 28;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  const last = history.at(-1);
  svg.setAttribute(
    'aria-label',
    last
      ? `${label}: ${last.waiting ?? '?'} waiting, ${last.ended} ended in the last sample`
      : `${label}: no samples yet`,
  );
  if (history.length === 0) return svg;
  const top = Math.max(1, ...history.map((s) => s.waiting ?? 0), ...history.map((s) => s.ended));
  const step = width / Math.max(1, history.length - 1);
  const y = (value) => height - 1 - ((value ?? 0) / top) * (height - 2);
  history.forEach((sample, index) => {
    if (!sample.ended) return;
    const bar = document.createElementNS(ns, 'rect');
    bar.setAttribute('x', String(index * step - 1));
    bar.setAttribute('y', String(y(sample.ended)));
    bar.setAttribute('width', '2');
    bar.setAttribute('height', String(height - y(sample.ended)));
    bar.setAttribute('class', 'spark-ended');
    svg.append(bar);
  });
  const line = document.createElementNS(ns, 'polyline');
  line.setAttribute('points', history.map((s, i) => `${i * step},${y(s.waiting)}`).join(' '));
  line.setAttribute('class', 'spark-waiting');
  svg.append(line);
  return svg;
}
