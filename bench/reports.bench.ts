import { migrate, openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';
import { fleetOverview } from '../registry/reports/fleet-overview.ts';
import { rotationReport } from '../registry/reports/rotation-report.ts';
import { standInIssuer } from '../test/support/stand-in-issuer.ts';
import { createTestDatabase } from '../test/support/databases.ts';
import { seedFleet } from './fleet.ts';
import type { BenchResult } from './report.ts';

const DEVICES = Number(process.env.DEVID_BENCH_REPORT_DEVICES ?? 1_000_000);
/** Devices behind on rotation: a healthy fleet has few, and the report's cost should follow them. */
const BEHIND = Math.max(1, Math.round(DEVICES / 1000));

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const started = performance.now();
  const value = await work();
  return { ms: performance.now() - started, value };
}

/**
 * The console's fleet overview and the rotation report on a PostgreSQL
 * fleet of a million devices (DEVID_BENCH_REPORT_DEVICES), one in a thousand
 * behind on rotation: read from the trigger-kept counters and due dates,
 * against the whole-fleet scans they replaced, measured in the same run.
 */
export async function benchReports(): Promise<BenchResult[]> {
  const database = await createTestDatabase('postgres').catch(() => undefined);
  if (!database) return [{ name: 'reports.fleet', value: 0, unit: 'ms', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
  const db = openDatabase(database.location);
  const store = new Store(db);
  try {
    await migrate(db, database.location);
    const now = new Date();
    for (const role of ['factory', 'operational'] as const) await standInIssuer(store, role);
    await db('models').insert({ name: 'bench-1', hw_type: '1.3.6.1.4.1.1.1', manufacturer: 'bench', created_at: now, updated_at: now });
    process.stderr.write(`bench: reports: seeding ${DEVICES} devices and ${2 * DEVICES} certificates…\n`);
    const seeded = await timed(() => seedFleet(db, 'fleet-1', 'RP-', DEVICES));
    await db.raw(`update certificates set not_before = now() - interval '30 hours', not_after = now() - interval '6 hours'
      where kind = 'operational' and device_serial in (select 'RP-' || g from generate_series(1, ?) g)`, [BEHIND]);
    await db.raw('analyze devices, certificates, fleet_counts');

    await fleetOverview(store, new Date()); // the first call plans its statements
    const overview = await timed(() => fleetOverview(store, new Date()));
    const rotation = await timed(() => rotationReport(store, {}, new Date()));
    // The scans these replaced: a count per breakdown and the newest certificate of every device.
    const scans = await timed(async () => {
      for (const column of ['state', 'model', 'device_class', 'owner']) await db('devices').select(column).count({ n: '*' }).groupBy(column);
      await db.raw(`select count(*) from (select distinct on (device_serial) device_serial, not_before, not_after from certificates
        where kind = 'operational' and device_serial is not null order by device_serial, created_at desc, serial desc) l
        where l.not_before + (l.not_after - l.not_before) * 5 / 6 <= now()`);
    });
    const size = await db.raw(`select pg_total_relation_size('fleet_counts') as counters, pg_relation_size('devices_rotation_due') as due_index,
      pg_relation_size('certificates_device_created') as newest_index`);
    const bytes = size.rows[0] as Record<string, string>;
    const perMillion = (n: string) => ((Number(n) / DEVICES) * 1e6) / 2 ** 20;
    const fleet = `${DEVICES.toLocaleString('en')} devices, ${BEHIND} behind`;
    return [
      { name: 'reports.fleet-overview', value: overview.ms, unit: 'ms', peer: 'scans', peerValue: scans.ms, note: `${fleet}; target under 1 s at 10 million` },
      { name: 'reports.rotation', value: rotation.ms, unit: 'ms', peer: 'scans', peerValue: scans.ms, note: `${rotation.value.devices} devices listed; ${fleet}` },
      { name: 'reports.seed-rate', value: (3 * DEVICES) / (seeded.ms / 1000), unit: 'rows/s', note: 'devices and certificates by INSERT ... SELECT, counters and due dates kept by the triggers' },
      { name: 'reports.due-index', value: perMillion(bytes.due_index!), unit: 'MiB/M devices', note: `the due-date index; the certificates' (device, created) index that replaced (device) ${perMillion(bytes.newest_index!).toFixed(0)} MiB; counters ${(Number(bytes.counters) / 1024).toFixed(0)} KiB in all` },
    ];
  } finally {
    await store.close();
    await database.drop();
  }
}
