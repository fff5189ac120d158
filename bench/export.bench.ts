import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import knexFactory from 'knex';
import { seedFleet } from './fleet.ts';
import type { BenchResult } from './report.ts';
import { cli, startBenchCa } from './server-process.ts';

const DEVICES = Number(process.env.DEVID_BENCH_FLEET_DEVICES ?? 100_000);

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
}

/**
 * The auditor's export of a fleet of 100,000 devices (two certificates
 * each), streamed over HTTPS from `devid-ca serve`: its time, its size, and
 * the server's resident memory during it against before it (the target: a
 * constant, whatever the fleet); and the rotation report over the same
 * fleet (target: under a second).
 */
export async function benchExport(): Promise<BenchResult[]> {
  const bench = await startBenchCa('postgres', 2);
  if (!bench) return [{ name: 'export.fleet.seconds', value: 0, unit: 's', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
  const db = knexFactory({ client: 'pg', connection: bench.env.DEVID_DATABASE_URL });
  try {
    await seedFleet(db, 'fleet-1', 'FL-', DEVICES);
    const auditor = (JSON.parse(cli(['token', 'create', '--role', 'auditor', '--json'], bench.env)) as { token: string }).token;
    const operator = (JSON.parse(cli(['token', 'create', '--role', 'operator', '--json'], bench.env)) as { token: string }).token;

    const reportStarted = performance.now();
    const report = await bench.call('GET', '/operator/v1/reports/rotation', operator, undefined);
    const reportMs = performance.now() - reportStarted;
    if (report.status !== 200) throw new Error(`rotation report: ${JSON.stringify(report.json)}`);

    const pid = bench.server.pid;
    const before = rssMiB(pid);
    let peak = before;
    const sampler = setInterval(() => { peak = Math.max(peak, rssMiB(pid)); }, 50);
    const started = performance.now();
    const bytes = await new Promise<number>((resolve, reject) => {
      const req = request(`${bench.origin}/audit/v1/export`, { agent: bench.agent, headers: { authorization: `Bearer ${auditor}` } }, (res) => {
        let size = 0;
        res.on('data', (chunk: Buffer) => { size += chunk.length; });
        res.on('end', () => (res.statusCode === 200 ? resolve(size) : reject(new Error(`export: ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end();
    });
    const seconds = (performance.now() - started) / 1000;
    clearInterval(sampler);
    return [
      { name: 'export.fleet.seconds', value: seconds, unit: 's', note: `${DEVICES} devices, ${2 * DEVICES} certificates, ${(bytes / 2 ** 20).toFixed(0)} MiB streamed` },
      { name: 'export.fleet.server-rss-growth', value: peak - before, unit: 'MiB', note: `server resident memory during the export over before it (${before.toFixed(0)} MiB); target: constant` },
      { name: 'report.rotation.ms', value: reportMs, unit: 'ms', note: `${DEVICES} devices; target under 1000 ms` },
    ];
  } finally {
    await db.destroy();
    await bench.close();
  }
}
