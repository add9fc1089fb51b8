import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';

import { chromium, type Browser, type Page } from 'playwright-core';

import { createTestDatabase, type TestDatabase } from '../support/database.js';
import { ROOT, TEST_HANDLERS } from '../support/paths.js';
import { startSupervisor, supervisorHome, type RunningSupervisor } from '../support/supervisor.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'web-admin-token-00000001';
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const CHROMIUM = '/usr/bin/chromium';

let database: TestDatabase;
let home: string;
let supervisor: RunningSupervisor;
let browser: Browser;
let page: Page;
/** Bytes of JavaScript and CSS the first load fetched. */
let firstLoadBytes = 0;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is installed (apt-get install -y chromium)`);
  database = await createTestDatabase();
  const created = await supervisorHome({
    handlers: TEST_HANDLERS,
    queues: [{ name: 'default', broker: 'postgres' }],
    worker: { heartbeatSeconds: 1, concurrency: 2 },
    http: { tokens: [{ tokenEnv: 'TASKQ_TEST_WEB_TOKEN', owner: 'ops', role: 'admin' }] },
  });
  home = created.home;
  supervisor = await startSupervisor(['--workers=2'], {
    TASKQ_DATABASE_URL: database.url,
    TASKQ_CONFIG: created.configFile,
    TASKQ_HOME: home,
    TASKQ_TEST_WEB_TOKEN: TOKEN,
  });
  await fs.mkdir(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--disable-background-networking', '--no-sandbox', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('response', async (response) => {
    const type = response.headers()['content-type'] ?? '';
    if (/javascript|css/.test(type)) firstLoadBytes += (await response.body()).length;
  });
});

after(async () => {
  await browser?.close();
  await supervisor?.stop();
  await database?.drop();
  if (home) await fs.rm(home, { recursive: true, force: true });
});

const row = (label: string) => page.locator('#tasks tbody tr', { hasText: label });

async function enqueueFromPage(name: string, parameters: unknown, label: string): Promise<void> {
  const form = page.locator('#enqueue');
  await form.getByLabel('Task name').fill(name);
  await form.getByLabel('Parameters (JSON)').fill(JSON.stringify(parameters));
  await form.getByLabel('Label').fill(label);
  await form.getByRole('button', { name: 'Enqueue' }).click();
  await row(label).waitFor();
}

test('the page asks for the token, then shows the fleet and the queues', async () => {
  await page.goto(supervisor.url);
  const dialog = page.locator('#token-dialog');
  await dialog.waitFor({ state: 'visible' });
  await dialog.getByLabel('Token').fill(TOKEN);
  await dialog.getByRole('button', { name: 'Use token' }).click();
  await page.locator('#workers tbody tr').nth(1).waitFor();
  await page.locator('#fleet-badge', { hasText: 'Fleet running · 2 workers' }).waitFor();
  await page.locator('#queues tbody tr[data-queue="default"]').waitFor();
  assert.ok(firstLoadBytes > 0 && firstLoadBytes < 200 * 1024, `${firstLoadBytes} bytes`);
});

test('a task enqueued from the page runs with its progress to completed, and its report opens', async () => {
  await enqueueFromPage('example.progress', { steps: 12, stepMs: 500 }, 'Progress run');
  await row('Progress run').locator('progress').waitFor({ timeout: 15_000 });
  await row('Progress run').locator('.status-in_progress').waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-running.png'), fullPage: true });
  await row('Progress run').locator('.status-completed').waitFor({ timeout: 20_000 });
  assert.match(await row('Progress run').innerText(), /Completed .*ago|Completed now/);

  await row('Progress run').getByRole('button', { name: 'Progress run', exact: true }).click();
  const detail = page.locator('#detail');
  await detail.waitFor({ state: 'visible' });
  await detail.locator('#detail-report', { hasText: 'finished 12 steps' }).waitFor();
  await detail.locator('#detail-events li', { hasText: 'finished → completed' }).waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-detail.png') });
  await page.keyboard.press('Escape');
  await detail.waitFor({ state: 'hidden' });
});

test('a running task is cancelled from the page', async () => {
  await enqueueFromPage('example.sleep', { ms: 60_000 }, 'Long sleep');
  await row('Long sleep').locator('.status-in_progress').waitFor({ timeout: 15_000 });
  await row('Long sleep').getByRole('button', { name: 'Cancel: Long sleep' }).click();
  await row('Long sleep').locator('.status-cancelled').waitFor({ timeout: 15_000 });
  const tasks = await fetch(`${supervisor.url}/api/v1/tasks?label=Long%20sleep`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const body = (await tasks.json()) as { tasks: { status: string }[] };
  assert.equal(body.tasks[0]!.status, 'cancelled');
});

test('pausing the fleet from the page keeps new tasks waiting until it resumes', async () => {
  await page.getByRole('button', { name: 'Pause fleet' }).click();
  await page.locator('#fleet-badge', { hasText: 'Fleet paused' }).waitFor();
  await waitFor('the workers to pause', async () =>
    (await supervisor.health()).workers.every((worker) => worker.state === 'paused'),
  );
  await enqueueFromPage('example.echo', { text: 'waits' }, 'Waits for resume');
  await page.locator('#workers tbody td', { hasText: 'paused' }).first().waitFor();
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-paused.png'), fullPage: true });
  assert.equal(await row('Waits for resume').locator('.status-created').count(), 1);

  await page.getByRole('button', { name: 'Resume fleet' }).click();
  await page.locator('#fleet-badge', { hasText: 'Fleet running' }).waitFor();
  await row('Waits for resume').locator('.status-completed').waitFor({ timeout: 15_000 });
  assert.equal((await supervisor.health()).paused, false);
});

test('on a phone-sized screen the task list stays usable', async () => {
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-phone.png'), fullPage: true });
  const wide = await page.locator('#tasks th.wide').first().isVisible();
  assert.equal(wide, false, 'secondary columns are hidden');
  assert.ok(
    await row('Waits for resume')
      .getByRole('button', { name: /Archive/ })
      .isVisible(),
  );
  await page.setViewportSize({ width: 1280, height: 900 });
  await page.screenshot({ path: path.join(ARTIFACTS, 'web-main.png'), fullPage: true });
});
