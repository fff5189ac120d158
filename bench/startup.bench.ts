import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/support/cli.ts';
import type { BenchResult } from './report.ts';
import { cli, startServer, type ServerProcess } from './server-process.ts';

const CA = fileURLToPath(new URL('../bin/devid-ca', import.meta.url));
const DEVICE = fileURLToPath(new URL('../bin/devid-device', import.meta.url));
/** Runs of each command; the figure is their median (DEVID_BENCH_STARTUP_RUNS). */
const RUNS = Number(process.env.DEVID_BENCH_STARTUP_RUNS ?? 7);

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Wall-clock milliseconds of one run of a command to its exit; it must succeed. */
function timed(command: string, args: string[], env: Record<string, string>): number {
  // The server keeps its SoftHSM configuration in its data directory, not the benchmark's.
  const { SOFTHSM2_CONF: _ignored, ...inherited } = process.env;
  const started = performance.now();
  const result = spawnSync(command, args, { env: { ...inherited, ...env }, encoding: 'utf8' });
  const ms = performance.now() - started;
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${result.stderr}`);
  return ms;
}

const medianOf = (command: string, args: string[], env: Record<string, string> = {}) => median(Array.from({ length: RUNS }, () => timed(command, args, env)));

/** Milliseconds from spawning `serve` to its first 200 on /readyz. */
async function serveToReady(env: Record<string, string>, args: string[] = []): Promise<{ ms: number; server: ServerProcess }> {
  const started = performance.now();
  const server = await startServer(env, args);
  for (;;) {
    const ready = await fetch(`http://${env.DEVID_HTTP_LISTEN}/readyz`).then((r) => r.ok, () => false);
    if (ready) return { ms: performance.now() - started, server };
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * How long commands take to start, on the embedded defaults (PGlite and
 * SoftHSM in a data directory): a CLI command through the running server's
 * admin socket, the device client, and `serve` until /readyz answers, the
 * first time (with init) and again on the same data directory. The floor of
 * a command is a bare `node -e 0`, same run.
 */
export async function benchStartup(): Promise<BenchResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'devid-bench-startup-'));
  const env = { DEVID_DATA_DIR: dir, DEVID_LISTEN: `127.0.0.1:${await freePort()}`, DEVID_HTTP_LISTEN: `127.0.0.1:${await freePort()}`, DEVID_PUBLIC_HOST: 'localhost' };
  let server: ServerProcess | undefined;
  try {
    const nodeFloor = medianOf(process.execPath, ['-e', '0']);
    const first = await serveToReady(env, ['--init-if-empty']);
    await first.server.stop();
    const warm = await serveToReady(env);
    server = warm.server;

    const socketCommand = medianOf(CA, ['token', 'list'], env);
    const localHelp = medianOf(CA, ['--help']);
    const deviceHelp = medianOf(DEVICE, ['--help']);

    // One device, enrolled, for a command with a round trip: renew asks renewalInfo and finds it not due.
    cli(['model', 'bench-1', '--hw-type', '1.3.6.1.4.1.99999.9', '--manufacturer', 'Bench'], env);
    const factoryToken = (JSON.parse(cli(['token', 'create', '--role', 'factory', '--line', 'bench', '--json'], env)) as { token: string }).token;
    const root = join(dir, 'root.pem');
    const rootDer = Buffer.from(await (await fetch(`http://${env.DEVID_HTTP_LISTEN}/ca/root.crt`)).arrayBuffer());
    writeFileSync(root, `-----BEGIN CERTIFICATE-----\n${rootDer.toString('base64')}\n-----END CERTIFICATE-----\n`);
    const device = ['--dir', join(dir, 'device')];
    const origin = `https://localhost:${env.DEVID_LISTEN.split(':')[1]}`;
    timed(DEVICE, [...device, 'init', '--serial', 'SN-BENCH-1', '--ca', root, '--acme', `${origin}/acme/directory`], {});
    timed(DEVICE, [...device, 'birth', '--factory', origin, '--model', 'bench-1', '--batch', 'bench'], { DEVID_FACTORY_TOKEN: factoryToken });
    const enroll = timed(DEVICE, [...device, 'enroll'], {});
    const renew = medianOf(DEVICE, [...device, 'renew'], {});

    const command = (name: string, value: number, note: string): BenchResult => ({ name, value, unit: 'ms', floor: nodeFloor, note });
    return [
      command('startup.cli.through-server', socketCommand, 'devid-ca token list through the admin socket, median'),
      command('startup.cli.help', localHelp, 'devid-ca --help in its own process, median'),
      command('startup.device.help', deviceHelp, 'devid-device --help, median'),
      command('startup.device.renew', renew, 'devid-device renew: one renewalInfo round trip, not due; median'),
      command('startup.device.enroll', enroll, 'devid-device enroll: a full ACME enrollment, once'),
      { name: 'startup.serve.first', value: first.ms, unit: 'ms', note: 'serve --init-if-empty on an empty data directory until /readyz answers 200' },
      { name: 'startup.serve.warm', value: warm.ms, unit: 'ms', note: 'serve again on the same data directory until /readyz answers 200' },
    ];
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
