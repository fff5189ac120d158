import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as x509 from '@peculiar/x509';
import { freePort } from '../test/support/cli.ts';
import { createTestDatabase, type TestDatabase } from '../test/support/databases.ts';

const BIN = fileURLToPath(new URL('../bin/devid-ca', import.meta.url));
/** Linux clock ticks per second (utime and stime in /proc/<pid>/stat). */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export interface ServerProcess {
  pid: number;
  /** CPU time (user + system) the server process has used so far, in milliseconds. */
  cpuMs(): number;
  /** Resident memory of the process and of each of its workers, in MiB. */
  rssMiB(): number[];
  stop(): Promise<void>;
}

/** The benchmark process's environment without its own SoftHSM configuration: the server keeps its token in its data directory. */
function baseEnv(): Record<string, string | undefined> {
  const { SOFTHSM2_CONF: _ignored, ...rest } = process.env;
  return rest;
}

/** Runs the CLI to completion (init, token create) with the benchmark's environment. */
export function cli(args: string[], env: Record<string, string>): string {
  const result = spawnSync(BIN, args, { encoding: 'utf8', env: { ...baseEnv(), ...env } });
  if (result.status !== 0) throw new Error(`devid-ca ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

/** CPU time (user + system) of one process so far, in milliseconds. */
export function processCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1000;
  } catch {
    return 0; // a worker that has just exited
  }
}

/** Resident memory of one process (VmRSS), in MiB; 0 for one that has exited. */
export function processRssMiB(pid: number): number {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return Number(kb ?? 0) / 1024;
  } catch {
    return 0;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** `devid-ca serve` in its own process, so its CPU is measured apart from the clients'. */
export async function startServer(env: Record<string, string>, args: string[] = []): Promise<ServerProcess> {
  // DEVID_BENCH_PROFILE=<dir>: a V8 CPU profile of the server (written when it stops).
  const profile = process.env.DEVID_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DEVID_BENCH_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, BIN, 'serve', ...args], { env: { ...baseEnv(), DEVID_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk) => {
      output += chunk;
      if (output.includes('devid-ca: serving')) resolve();
    });
    child.once('exit', () => reject(new Error(`serve exited:\n${output}`)));
  });
  const pid = child.pid!;
  return {
    pid,
    // The process and its workers (serve --workers): utime and stime of each.
    cpuMs: () => [pid, ...childPids(pid)].reduce((sum, p) => sum + processCpuMs(p), 0),
    rssMiB: () => [pid, ...childPids(pid)].map(processRssMiB),
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One CA for a benchmark, serving in its own process, with a factory and an operator token and the model bench-1. */
export interface BenchCa {
  origin: string;
  /** The root certificate, PEM. */
  ca: string;
  agent: Agent;
  server: ServerProcess;
  /** The server's environment (data directory, listeners, database URL): for the CLI beside it. */
  env: Record<string, string>;
  /** host:port of the plain-HTTP listener (CRL, OCSP). */
  http: string;
  factoryToken: string;
  operatorToken: string;
  call(method: string, path: string, token: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** Init, tokens and serve for one database kind; undefined when PostgreSQL is asked for and none answers. */
export async function startBenchCa(kind: 'pglite' | 'postgres', maxSockets: number, serveArgs: string[] = [], extraEnv: Record<string, string> = {}): Promise<BenchCa | undefined> {
  const pg: TestDatabase | undefined = kind === 'postgres' ? await createTestDatabase('postgres').catch(() => undefined) : undefined;
  if (kind === 'postgres' && !pg) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'devid-bench-ca-'));
  const port = await freePort();
  const env = {
    DEVID_DATA_DIR: dir, DEVID_LISTEN: `127.0.0.1:${port}`, DEVID_HTTP_LISTEN: `127.0.0.1:${await freePort()}`, DEVID_PUBLIC_HOST: 'localhost', DEVID_ACME_ANONYMOUS_RATE: '100000',
    DEVID_HTTP_BASE_URL: 'http://pki.bench.test', ...(pg ? { DEVID_DATABASE_URL: pg.url! } : {}), ...extraEnv,
  };
  const cleanup = async () => {
    await pg?.drop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    cli(['init'], env);
    const tokenOf = (args: string[]) => (JSON.parse(cli(['token', 'create', ...args, '--json'], env)) as { token: string }).token;
    const factoryToken = tokenOf(['--role', 'factory', '--line', 'bench']);
    const operatorToken = tokenOf(['--role', 'operator']);
    const server = await startServer(env, serveArgs);
    const ca = new x509.X509Certificate(new Uint8Array(await (await fetch(`http://${env.DEVID_HTTP_LISTEN}/ca/root.crt`)).arrayBuffer())).toString('pem');
    const agent = new Agent({ keepAlive: true, maxSockets, ca });
    const origin = `https://localhost:${port}`;
    const call = (method: string, path: string, token: string, body: unknown) => new Promise<{ status: number; json: Record<string, unknown> }>((resolve, reject) => {
      const req = request(`${origin}${path}`, { method, agent, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text) as Record<string, unknown> }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(body));
    });
    await call('PUT', '/operator/v1/models/bench-1', operatorToken, { hwType: '1.3.6.1.4.1.99999.9', manufacturer: 'Bench' });
    return {
      origin, ca, agent, server, env, http: env.DEVID_HTTP_LISTEN, factoryToken, operatorToken, call,
      close: async () => {
        agent.destroy();
        await server.stop();
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
