// The taskq page: the fleet, the queues and the task list, kept live by polling the REST API
// while anything is queued or in progress, and quiet otherwise.

import { call, download, setToken, token } from './api.js';
import { ago, h, megabytes, progressBar, reportTree, sparkline, statusIcon, when } from './view.js';

const POLL_MS = 2000;
const $ = (selector) => document.querySelector(selector);

const state = {
  filters: { status: '', label: '', task: '', queue: '', owner: '', sort: 'created', limit: 50 },
  offset: 0,
  openTask: null,
  timer: null,
  writable: false,
  admin: false,
};

// ---- API calls, with the token prompt -------------------------------------------------------

let asking = null;

/** Shows the token dialog; resolves true when the user gave a token. */
function askToken() {
  asking ??= new Promise((resolve) => {
    const dialog = $('#token-dialog');
    const form = $('#token-form');
    form.reset();
    dialog.addEventListener(
      'close',
      () => {
        const given = dialog.returnValue === 'save' ? form.elements.token.value.trim() : '';
        if (given) setToken(given);
        asking = null;
        resolve(Boolean(given));
      },
      { once: true },
    );
    dialog.showModal();
  });
  return asking;
}

const api = (method, path, body) => call(method, path, body, askToken);

function notify(message, kind = 'error') {
  const notice = $('#notice');
  notice.textContent = message;
  notice.className = `notice notice-${kind}`;
  notice.hidden = !message;
}

/** Runs an action from a button, shows its error, and refreshes the page's data after it. */
async function act(what, run) {
  try {
    await run();
    notify(`${what}: done`, 'ok');
  } catch (error) {
    const hint = error.details?.force ? ' (use the force option to insist)' : '';
    notify(`${what}: ${error.message}${hint}`);
  }
  await refresh();
}

// ---- Fleet ----------------------------------------------------------------------------------

function renderFleet(fleet) {
  const badge = $('#fleet-badge');
  badge.textContent = fleet.paused
    ? `Fleet paused · ${fleet.workers.length} workers`
    : `Fleet running · ${fleet.workers.length} workers`;
  badge.className = `badge ${fleet.paused ? 'badge-paused' : 'badge-running'}`;
  $('#fleet-pause').disabled = fleet.paused || !state.admin;
  $('#fleet-resume').disabled = !fleet.paused || !state.admin;
  $('#workers tbody').replaceChildren(
    ...fleet.workers.map((worker) =>
      h(
        'tr',
        { 'data-worker': worker.id },
        h('th', { scope: 'row' }, worker.id),
        h('td', { className: `worker-${worker.state}` }, worker.state),
        h('td', {}, worker.pid ?? '–'),
        h('td', {}, megabytes(worker.rssBytes)),
        h('td', {}, worker.running),
        h('td', {}, worker.tasksDone),
        h('td', {}, worker.restarts),
      ),
    ),
  );
}

// ---- Queues ---------------------------------------------------------------------------------

function throughput(history) {
  const recent = history.slice(-12);
  if (recent.length < 2) return '–';
  const seconds = (Date.parse(recent.at(-1).at) - Date.parse(recent[0].at)) / 1000;
  const ended = recent.slice(1).reduce((sum, sample) => sum + sample.ended, 0);
  return seconds > 0 ? `${((ended / seconds) * 60).toFixed(1)}/min` : '–';
}

function weightForm(queue) {
  const input = h('input', {
    type: 'number',
    min: 0,
    step: 'any',
    value: queue.weight.configured,
    name: 'weight',
    'aria-label': `Weight of queue ${queue.name}`,
    disabled: !state.admin,
  });
  return h(
    'form',
    {
      className: 'weight-form',
      onsubmit: (event) => {
        event.preventDefault();
        act(`Weight of ${queue.name}`, () =>
          api('PATCH', `/api/v1/queues/${encodeURIComponent(queue.name)}`, {
            weight: Number(input.value),
          }),
        );
      },
    },
    input,
    h('button', { type: 'submit', disabled: !state.admin }, 'Set'),
  );
}

function renderQueues(queues) {
  const editing = document.activeElement?.closest?.('#queues');
  if (editing) return; // Do not replace an input the user is typing in.
  $('#queues tbody').replaceChildren(
    ...queues.map((queue) =>
      h(
        'tr',
        { 'data-queue': queue.name },
        h('th', { scope: 'row' }, queue.name, queue.paused ? ' (paused)' : ''),
        h('td', {}, queue.waiting ?? '?'),
        h('td', {}, queue.inFlight ?? '?'),
        h('td', {}, throughput(queue.history)),
        h(
          'td',
          {},
          `${queue.weight.configured} (${Math.round(queue.weight.effective * 100) / 100})`,
        ),
        h('td', {}, sparkline(queue.history, `Queue ${queue.name}`)),
        h(
          'td',
          { className: 'actions' },
          weightForm(queue),
          h(
            'button',
            {
              type: 'button',
              disabled: !state.admin,
              'aria-label': `${queue.paused ? 'Resume' : 'Pause'} queue ${queue.name}`,
              onclick: () =>
                act(`${queue.paused ? 'Resume' : 'Pause'} ${queue.name}`, () =>
                  api(
                    'POST',
                    `/api/v1/queues/${encodeURIComponent(queue.name)}/${queue.paused ? 'resume' : 'pause'}`,
                    {},
                  ),
                ),
            },
            queue.paused ? 'Resume' : 'Pause',
          ),
        ),
      ),
    ),
  );
}

// ---- Tasks ----------------------------------------------------------------------------------

function taskActions(task) {
  const buttons = [];
  const button = (text, run) =>
    h(
      'button',
      {
        type: 'button',
        disabled: !state.writable,
        onclick: run,
        'aria-label': `${text}: ${task.label}`,
      },
      text,
    );
  const active = task.publicStatus === 'created' || task.publicStatus === 'in_progress';
  if (active) {
    buttons.push(
      button('Cancel', () =>
        act('Cancel', () =>
          api('POST', `/api/v1/tasks/${task.id}/cancel`, { force: task.status !== 'enqueued' }),
        ),
      ),
    );
  } else if (task.publicStatus !== 'archived') {
    buttons.push(
      button('Archive', () =>
        act('Archive', () => api('POST', `/api/v1/tasks/${task.id}/archive`, {})),
      ),
    );
  }
  if (task.publicStatus !== 'created' && task.publicStatus !== 'in_progress') {
    buttons.push(
      button('Rerun', () => act('Rerun', () => api('POST', `/api/v1/tasks/${task.id}/rerun`, {}))),
    );
  }
  if (task.resultFile) {
    buttons.push(
      h(
        'button',
        {
          type: 'button',
          onclick: () =>
            act('Download', () =>
              download(`/api/v1/tasks/${task.id}/result`, task.resultFile.name),
            ),
          'aria-label': `Download the result of ${task.label}`,
        },
        'Download',
      ),
    );
  }
  return h('div', { className: 'actions' }, buttons);
}

function taskRow(task) {
  return h(
    'tr',
    { 'data-task': task.id, className: `row-${task.publicStatus}` },
    h('td', {}, statusIcon(task)),
    h(
      'td',
      {},
      h(
        'button',
        { type: 'button', className: 'link', onclick: () => openTask(task.id) },
        task.label,
      ),
    ),
    h('td', { className: 'wide' }, task.name),
    h('td', { className: 'wide' }, task.queue),
    h('td', { className: 'wide' }, task.owner),
    h('td', { title: task.updatedAt }, when(task)),
    h('td', {}, progressBar(task)),
    h('td', {}, taskActions(task)),
  );
}

function taskQuery() {
  const params = new URLSearchParams({ limit: state.filters.limit, offset: state.offset });
  for (const key of ['status', 'label', 'task', 'queue', 'owner', 'sort'])
    if (state.filters[key]) params.set(key, state.filters[key]);
  return params;
}

function renderTasks(page) {
  $('#tasks tbody').replaceChildren(
    ...(page.tasks.length
      ? page.tasks.map(taskRow)
      : [h('tr', {}, h('td', { colspan: 8 }, 'No tasks.'))]),
  );
  const first = page.tasks.length ? state.offset + 1 : 0;
  const last = state.offset + page.tasks.length;
  $('#page-info').textContent = `${first}–${last} of ${page.total}${page.totalExact ? '' : '+'}`;
  $('#prev').disabled = state.offset === 0;
  $('#next').disabled = page.totalExact && last >= page.total;
}

function renderStats(stats) {
  $('#stats').textContent =
    `${stats.enqueued} queued · ${stats.inProgress} in progress · ${stats.completed} completed · ` +
    `${stats.failed} failed · ${stats.cancelled} cancelled`;
}

// ---- One task -------------------------------------------------------------------------------

async function openTask(id) {
  state.openTask = id;
  await renderDetail();
  const dialog = $('#detail');
  if (!dialog.open) dialog.showModal();
}

async function renderDetail() {
  if (!state.openTask) return;
  const id = state.openTask;
  const [{ task, events }, children] = await Promise.all([
    api('GET', `/api/v1/tasks/${id}`),
    api('GET', `/api/v1/tasks/${id}/children?limit=100`),
  ]);
  $('#detail-title').textContent = task.label;
  const field = (name, value) => [h('dt', {}, name), h('dd', {}, value ?? '–')];
  $('#detail-fields').replaceChildren(
    ...field('Status', statusIcon(task)),
    ...field('When', when(task)),
    ...field('Task', task.name),
    ...field('Id', task.id),
    ...field('Queue', task.queue),
    ...field('Owner', task.owner),
    ...field('Category', task.category),
    ...field('Attempts', `${task.attempts} of ${task.maxAttempts}`),
    ...field(
      'Progress',
      task.progress === null
        ? null
        : `${Math.round(task.progress * 100)}% ${task.progressMessage ?? ''}`,
    ),
    ...field('Worker', task.worker),
    ...field(
      'Parent',
      task.parentId
        ? h(
            'button',
            { type: 'button', className: 'link', onclick: () => openTask(task.parentId) },
            task.parentId,
          )
        : null,
    ),
  );
  $('#detail-actions').replaceChildren(taskActions(task));
  $('#detail-report').replaceChildren(reportTree(task.report));
  $('#detail-children').replaceChildren(
    ...(children.tasks.length
      ? children.tasks.map((child) =>
          h(
            'li',
            {},
            statusIcon(child),
            ' ',
            h(
              'button',
              { type: 'button', className: 'link', onclick: () => openTask(child.id) },
              child.label,
            ),
          ),
        )
      : [h('li', {}, 'None.')]),
  );
  $('#detail-events').replaceChildren(
    ...events.map((event) =>
      h(
        'li',
        {},
        h('time', { datetime: event.at, title: event.at }, ago(event.at)),
        ` ${event.kind}`,
        event.toStatus ? ` → ${event.toStatus}` : '',
        ` by ${event.actor}`,
      ),
    ),
  );
}

// ---- Stuck tasks ----------------------------------------------------------------------------

function stuckFilter() {
  const form = $('#stuck-form').elements;
  return { queue: form.queue.value, ageSeconds: Number(form.age.value) };
}

function renderStuckQueues(queues) {
  const select = $('#stuck-form').elements.queue;
  const names = queues.map((queue) => queue.name);
  if ([...select.options].map((option) => option.value).join() === names.join()) return;
  select.replaceChildren(...names.map((name) => h('option', { value: name }, name)));
}

async function checkStuck() {
  try {
    const summary = await api('GET', `/api/v1/stuck?${new URLSearchParams(stuckFilter())}`);
    const { totals } = summary;
    $('#stuck-summary').textContent = totals.tasks
      ? `${totals.tasks} stuck task(s) in ${summary.queue}: ${totals.orphans} without a message, ${totals.live} on a live worker`
      : `No stuck tasks in ${summary.queue}.`;
    $('#stuck-list').replaceChildren(
      ...summary.tasks.map((task) =>
        h(
          'li',
          {},
          `${task.label} (${task.name}) — ${task.status} for ${task.ageSeconds} s${task.orphan ? ', message lost' : ''}`,
        ),
      ),
    );
  } catch (error) {
    $('#stuck-summary').textContent = error.message;
  }
}

// ---- Refresh and polling --------------------------------------------------------------------

let refreshing = null;

async function refresh() {
  refreshing ??= load().finally(() => (refreshing = null));
  return refreshing;
}

async function load() {
  clearTimeout(state.timer);
  try {
    const [fleet, queues, page, stats] = await Promise.all([
      api('GET', '/api/v1/fleet'),
      api('GET', '/api/v1/queues'),
      api('GET', `/api/v1/tasks?${taskQuery()}`),
      api(
        'GET',
        `/api/v1/stats${state.filters.owner ? `?owner=${encodeURIComponent(state.filters.owner)}` : ''}`,
      ),
    ]);
    renderFleet(fleet);
    renderQueues(queues.queues);
    renderStuckQueues(queues.queues);
    renderTasks(page);
    renderStats(stats);
    if ($('#detail').open) await renderDetail();
    const active =
      stats.enqueued + stats.inProgress > 0 || queues.queues.some((queue) => queue.waiting > 0);
    schedule(active);
  } catch (error) {
    notify(error.message);
    schedule(false);
  }
}

/** Polls again while work is queued or in progress; stops when nothing is, as TAO's list does. */
function schedule(active) {
  $('#live').textContent = active ? 'Live' : 'Up to date; nothing in progress';
  if (active && !document.hidden) state.timer = setTimeout(refresh, POLL_MS);
}

// ---- Wiring ---------------------------------------------------------------------------------

/** Who the page acts as: a reader (a server without tokens) gets no buttons that change things. */
async function detectAccess() {
  try {
    const me = await api('GET', '/api/v1/me');
    state.writable = me.role !== 'reader';
    state.admin = me.role === 'admin';
    $('#token-button').hidden = me.role === 'reader';
    $('#stuck-restart').disabled = !state.admin;
    document.body.dataset.role = me.role;
  } catch (error) {
    notify(error.message);
  }
}

function wire() {
  $('#refresh').addEventListener('click', refresh);
  $('#token-button').addEventListener('click', async () => {
    if (!(await askToken())) return;
    await detectAccess();
    await refresh();
  });
  $('#fleet-pause').addEventListener('click', () =>
    act('Pause fleet', () => api('POST', '/api/v1/fleet/pause', {})),
  );
  $('#fleet-resume').addEventListener('click', () =>
    act('Resume fleet', () => api('POST', '/api/v1/fleet/resume', {})),
  );
  $('#filters').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.target.elements;
    state.filters = {
      status: form.status.value,
      label: form.label.value.trim(),
      task: form.task.value.trim(),
      queue: form.queue.value.trim(),
      owner: form.owner.value.trim(),
      sort: form.sort.value,
      limit: Number(form.limit.value),
    };
    state.offset = 0;
    refresh();
  });
  $('#prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - state.filters.limit);
    refresh();
  });
  $('#next').addEventListener('click', () => {
    state.offset += state.filters.limit;
    refresh();
  });
  $('#enqueue').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = event.target.elements;
    act('Enqueue', async () => {
      let parameters;
      try {
        parameters = JSON.parse(form.parameters.value || '{}');
      } catch {
        throw new Error('Parameters must be JSON, such as {"text": "hi"}');
      }
      const body = { name: form.name.value.trim(), parameters };
      if (form.label.value.trim()) body.label = form.label.value.trim();
      const created = await api('POST', '/api/v1/tasks', body);
      state.offset = 0;
      return created;
    });
  });
  $('#clear-finished').addEventListener('click', () =>
    act('Clear all finished', () => api('POST', '/api/v1/tasks/archive', { allFinished: true })),
  );
  $('#stuck-form').addEventListener('submit', (event) => {
    event.preventDefault();
    checkStuck();
  });
  $('#stuck-restart').addEventListener('click', () =>
    act('Restart stuck tasks', async () => {
      const { outcomes } = await api('POST', '/api/v1/stuck/restart', stuckFilter());
      $('#stuck-summary').textContent =
        `${outcomes.length} task(s): ${outcomes.map((o) => o.action).join(', ') || 'none'}`;
    }),
  );
  $('#detail .close').addEventListener('click', () => $('#detail').close());
  $('#detail').addEventListener('close', () => (state.openTask = null));
  document.addEventListener('visibilitychange', () => !document.hidden && refresh());
  window.addEventListener('focus', refresh);
}

wire();
await detectAccess();
await refresh();
