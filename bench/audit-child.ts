import { AuditLog } from '../registry/audit/audit-log.ts';
import { openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';

/**
 * One process of the audit contention benchmark (bench/audit.bench.ts):
 * appends audit events (or, for the floor, plain rows) to one PostgreSQL
 * from `concurrency` callers until the deadline; prints how many it made.
 */
const [url, mode, concurrencyArg, deadlineArg] = process.argv.slice(2) as [string, 'audit' | 'insert', string, string];
const db = openDatabase({ kind: 'postgres', url });
const store = new Store(db);
const audit = new AuditLog(() => new Date());
const deadline = Number(deadlineArg);
let done = 0;
try {
  // Start together: the parent gives every process the same wall-clock deadline, and a start a little before it.
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Number(process.env.DEVID_BENCH_WINDOW_MS) - Date.now())));
  await Promise.all(Array.from({ length: Number(concurrencyArg) }, async () => {
    while (Date.now() < deadline) {
      if (mode === 'audit') await audit.recordAlone(store, { action: 'bench.appended', actor: 'bench', data: { pid: process.pid, n: done } });
      else await db.raw('insert into bench_floor (pid, n) values (?, ?)', [process.pid, done]);
      done += 1;
    }
  }));
  process.stdout.write(`${JSON.stringify({ done })}\n`);
} finally {
  await db.destroy();
}
