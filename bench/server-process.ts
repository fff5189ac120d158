import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../bin/devid-ca', import.meta.url));
/** Linux clock ticks per second (utime and stime in /proc/<pid>/stat). */
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

export interface ServerProcess {
  pid: number;
  /** CPU time (user + system) the server process has used so far, in milliseconds. */
  cpuMs(): number;
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

/** `devid-ca serve` in its own process, so its CPU is measured apart from the clients'. */
export async function startServer(env: Record<string, string>): Promise<ServerProcess> {
  // DEVID_BENCH_PROFILE=<dir>: a V8 CPU profile of the server (written when it stops).
  const profile = process.env.DEVID_BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.DEVID_BENCH_PROFILE}`] : [];
  const child = spawn(process.execPath, [...profile, BIN, 'serve'], { env: { ...baseEnv(), DEVID_LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
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
    cpuMs: () => {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1000;
    },
    stop: async () => {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
