import cluster, { type Worker } from 'node:cluster';
import type { CliIo } from './cli/io.ts';

/** A worker that dies is started again after this long (not in a tight loop when it cannot start). */
const RESTART_DELAY_MS = 1000;

export interface WorkerReady {
  serving: { https: number; http: number };
}

/**
 * `serve --workers N`: N server processes on one PostgreSQL, sharing the
 * listening sockets (node:cluster hands each connection to one worker), so
 * the CA uses every core. Everything they share lives in the database:
 * nonces, orders, OCSP responses, CRL generation and checkpoints under
 * advisory locks, the audit chain. The primary process serves nothing: it
 * starts the workers, starts again any that dies, and stops them all on
 * SIGTERM or SIGINT. Resolves when they have stopped.
 */
export async function runWorkers(io: Pick<CliIo, 'say'>, count: number): Promise<void> {
  let stopping = false;
  const ready = new Set<number>();
  const start = (index: number): Worker => {
    const worker = cluster.fork({ DEVID_WORKER_INDEX: String(index) });
    worker.on('message', (message: WorkerReady) => {
      if (!message?.serving || ready.has(index)) return;
      ready.add(index);
      if (ready.size === count) io.say(`serving HTTPS on port ${message.serving.https} and HTTP on port ${message.serving.http} with ${count} workers`);
    });
    worker.once('exit', (code, signal) => {
      if (stopping) return;
      io.say(`worker ${index} stopped (${signal ?? `exit ${code}`}): starting it again`);
      setTimeout(() => { if (!stopping) start(index); }, RESTART_DELAY_MS).unref();
    });
    return worker;
  };
  for (let index = 0; index < count; index += 1) start(index);
  await stopSignal();
  stopping = true;
  io.say('stopping');
  const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  await Promise.all(workers.map((worker) => new Promise<void>((resolve) => {
    if (worker.isDead()) return resolve();
    worker.once('exit', () => resolve());
    worker.process.kill('SIGTERM');
    // A worker that has not stopped in time (a request or a step waiting on a database that went away) is stopped hard.
    setTimeout(() => {
      if (worker.isDead()) return;
      io.say(`worker ${worker.id} did not stop within ${STOP_GRACE_MS / 1000} s: killing it`);
      worker.process.kill('SIGKILL');
    }, STOP_GRACE_MS).unref();
  })));
}

/** How long a worker has to stop after SIGTERM. */
const STOP_GRACE_MS = 15_000;

/** Resolves at the first SIGINT or SIGTERM: when a server, or the primary of its workers, stops. */
export function stopSignal(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
}

/** In a worker: its index, given by the primary. */
export function workerIndex(): number | undefined {
  return cluster.isWorker ? Number(process.env.DEVID_WORKER_INDEX ?? 0) : undefined;
}

/** In a worker: tells the primary it is serving. */
export function reportServing(serving: WorkerReady['serving']): void {
  if (cluster.isWorker) process.send?.({ serving } satisfies WorkerReady);
}
