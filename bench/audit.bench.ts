import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { AuditLog } from '../registry/audit/audit-log.ts';
import { migrate, openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';
import { createTestDatabase } from '../test/support/databases.ts';
import type { BenchResult } from './report.ts';

const CHILD = fileURLToPath(new URL('./audit-child.ts', import.meta.url));
const PROCESSES = [1, 2, 4];
/** Callers per process: enough to keep a chain lock always wanted. */
const CONCURRENCY = Number(process.env.DEVID_BENCH_AUDIT_CALLERS ?? 8);

async function run(url: string, mode: 'audit' | 'insert', processes: number, ms: number): Promise<number> {
  const startAt = Date.now() + 3000; // every child has connected and waits by then
  const deadline = startAt + ms;
  const counts = await Promise.all(Array.from({ length: processes }, () => new Promise<number>((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--import', 'reflect-metadata', CHILD, url, mode, String(CONCURRENCY), String(deadline)], {
      env: { ...process.env, DEVID_BENCH_WINDOW_MS: String(ms) }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => (code === 0 ? resolve((JSON.parse(out) as { done: number }).done) : reject(new Error(`audit child exited ${code}`))));
  })));
  return counts.reduce((a, b) => a + b, 0) / (ms / 1000);
}

/**
 * Issue 12: is the audit chain the cluster's bottleneck? Audited actions
 * per second from 1, 2 and 4 processes on one PostgreSQL, each with 8
 * callers, against the floor of plain single-row INSERT transactions from
 * the same processes (no chain). The chain stays verifiable after the run.
 */
export async function benchAudit(ms: number): Promise<BenchResult[]> {
  const database = await createTestDatabase('postgres');
  const db = openDatabase(database.location);
  try {
    await migrate(db, database.location);
    await db.raw('create table bench_floor (id bigserial primary key, pid int, n int, at timestamptz default now())');
    const results: BenchResult[] = [];
    for (const processes of PROCESSES) {
      const floor = await run(database.url!, 'insert', processes, ms);
      const appends = await run(database.url!, 'audit', processes, ms);
      results.push({ name: `audit appends, ${processes} process(es) x ${CONCURRENCY}`, value: appends, unit: 'events/s', floor, note: 'floor: plain INSERT transactions, same callers' });
    }
    const verified = await new AuditLog(() => new Date()).verify(new Store(db));
    if (!verified.ok) throw new Error(`the chain broke under contention: ${JSON.stringify(verified)}`);
    return results;
  } finally {
    await db.destroy();
    await database.drop();
  }
}
