import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/devid-ca', import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs ./bin/devid-ca as a user would, with only the given environment on top of PATH. */
export function runCli(args: string[], env: Record<string, string>): CliResult {
  const result = spawnSync(BIN, args, { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...env }, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface ServeEnv {
  /** The environment of `devid-ca` commands for this CA: its data directory and two free loopback ports, quiet logs, and `extra`. */
  env: Record<string, string>;
  httpsPort: number;
  httpPort: number;
}

export async function serveEnv(dataDir: string, extra: Record<string, string> = {}): Promise<ServeEnv> {
  const httpsPort = await freePort();
  const httpPort = await freePort();
  return {
    env: { DEVID_DATA_DIR: dataDir, DEVID_LISTEN: `127.0.0.1:${httpsPort}`, DEVID_HTTP_LISTEN: `127.0.0.1:${httpPort}`, DEVID_LOG_LEVEL: 'warn', ...extra },
    httpsPort,
    httpPort,
  };
}

export interface ServeProcess {
  child: ChildProcess;
  output: () => string;
  stop(): Promise<number | null>;
}

/** Starts `devid-ca serve` and waits until it says it is serving (or exits). */
export async function startServe(env: Record<string, string>, args: string[] = []): Promise<ServeProcess> {
  const child = spawn(BIN, ['serve', ...args], { env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? '/tmp', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start in time:\n${output}`)), 60_000);
    const check = () => {
      if (output.includes('devid-ca: serving')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`serve exited:\n${output}`));
    });
  });
  return {
    child,
    output: () => output,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}
