import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { exited } from '../support/cli.js';
import { waitFor } from '../support/wait.js';

/** Debian's package puts the server here (`.ci/setup` installs it). */
export const PROMETHEUS = '/usr/bin/prometheus';

/** One element of an instant query's result. */
export interface VectorSample {
  metric: Record<string, string>;
  value: number;
}

export interface PrometheusServer {
  url: string;
  /** An instant query through the HTTP API; throws on an error status. */
  query(expr: string): Promise<VectorSample[]>;
  stop(): Promise<void>;
}

/** A port nobody listens on now, for a server that cannot be told to pick its own. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * A real Prometheus on a loopback port, with its data in a temporary directory, scraping
 * `target` (host:port) every second.
 */
export async function startPrometheus(target: string): Promise<PrometheusServer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'taskq-prometheus-'));
  const config = path.join(dir, 'prometheus.yml');
  await fs.writeFile(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      '  - job_name: taskq',
      '    static_configs:',
      `      - targets: ['${target}']`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const child = spawn(
    PROMETHEUS,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let output = '';
  child.stderr!.on('data', (chunk) => (output += chunk));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited(child);
    }
    await fs.rm(dir, { recursive: true, force: true });
  };

  try {
    await waitFor('Prometheus to be ready', async () => {
      if (child.exitCode !== null) throw new Error(`prometheus exited:\n${output}`);
      return (await fetch(`${url}/-/ready`)).ok;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { url, query: (expr) => instantQuery(url, expr), stop };
}

async function instantQuery(url: string, expr: string): Promise<VectorSample[]> {
  const response = await fetch(`${url}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await response.json()) as {
    status: string;
    error?: string;
    data?: {
      resultType: string;
      result: { metric: Record<string, string>; value: [number, string] }[];
    };
  };
  if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
  if (body.data?.resultType !== 'vector') throw new Error(`query ${expr}: not a vector`);
  return body.data.result.map((item) => ({ metric: item.metric, value: Number(item.value[1]) }));
}
