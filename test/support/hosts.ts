import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Hosts on one machine for the tests of a fleet spread over several: each host is a network
 * namespace (`ip netns`) joined by a veth pair of its own to a bridge on the machine, all on
 * 10.77.0.0/24 with the machine at 10.77.0.1 and host n at 10.77.0.(n+1). A process started
 * through `exec` sees only its own loopback and that link, so it reaches the shared PostgreSQL
 * server and SQS emulator the way a second machine would: over the link, through `forward`.
 * Cutting a host's link (`cut`) leaves its open connections hanging, as a pulled cable does.
 *
 * Making namespaces needs root on Linux; `hostsSupported` says whether this process can.
 */
export interface Host {
  /** The namespace's name. */
  readonly name: string;
  /** The host's own address, where its HTTP server can listen. */
  readonly address: string;
  /** The command prefix that runs a program inside the host. */
  exec(command: string[]): string[];
  /** Takes the host's link down: nothing crosses until `mend`. */
  cut(): Promise<void>;
  mend(): Promise<void>;
}

/** The machine's address on the hosts' network: where forwarded services are reached. */
export const GATEWAY = '10.77.0.1';

const PREFIX = 'tqh';
const BRIDGE = 'tqbr0';

export function hostsSupported(): boolean {
  return process.getuid?.() === 0 && process.platform === 'linux';
}

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

/** Removes the namespaces, links and bridge that a killed test run left behind. */
async function removeAll(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list']);
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0];
    if (name?.startsWith(PREFIX)) await ip('netns', 'del', name).catch(() => undefined);
  }
  // A namespace outlives its name while a process still runs in it, and keeps its link pair.
  const { stdout: links } = await run('ip', ['-o', 'link', 'show']);
  for (const match of links.matchAll(new RegExp(`^\\d+: (${PREFIX}\\d+a)@`, 'gm'))) {
    await ip('link', 'del', match[1]!).catch(() => undefined);
  }
  await ip('link', 'del', BRIDGE).catch(() => undefined);
}

/** Makes `count` hosts, numbered from 1. `remove` undoes it all. */
export async function createHosts(
  count: number,
): Promise<{ hosts: Host[]; remove: () => Promise<void> }> {
  await removeAll();
  const hosts: Host[] = [];
  try {
    await ip('link', 'add', BRIDGE, 'type', 'bridge');
    await ip('addr', 'add', `${GATEWAY}/24`, 'dev', BRIDGE);
    await ip('link', 'set', BRIDGE, 'up');
    for (let n = 1; n <= count; n++) hosts.push(await createHost(n));
  } catch (error) {
    await removeAll();
    throw error;
  }
  return { hosts, remove: removeAll };
}

async function createHost(n: number): Promise<Host> {
  const name = `${PREFIX}${n}`;
  const outside = `${name}a`;
  const inside = `${name}b`;
  const address = `10.77.0.${n + 1}`;
  await ip('netns', 'add', name);
  await ip('link', 'add', outside, 'type', 'veth', 'peer', 'name', inside);
  await ip('link', 'set', inside, 'netns', name);
  await ip('link', 'set', outside, 'master', BRIDGE);
  await ip('link', 'set', outside, 'up');
  const inNamespace = (...args: string[]) => ip('netns', 'exec', name, 'ip', ...args);
  await inNamespace('addr', 'add', `${address}/24`, 'dev', inside);
  await inNamespace('link', 'set', inside, 'up');
  await inNamespace('link', 'set', 'lo', 'up');
  return {
    name,
    address,
    exec: (command) => ['ip', 'netns', 'exec', name, ...command],
    cut: () => ip('link', 'set', outside, 'down'),
    mend: () => ip('link', 'set', outside, 'up'),
  };
}

/**
 * Forwards TCP connections made to `listenHost:listenPort` to `target`, so that a service that
 * listens on loopback only can be reached from the hosts. Returns the port and a
 * function that closes the listener and every forwarded connection.
 */
export async function forward(
  listenHost: string,
  target: { host: string; port: number },
  listenPort = 0,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, listenHost, resolve);
  });
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
