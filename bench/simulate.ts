import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import knexFactory from 'knex';
import { fleetOverview } from '../registry/reports/fleet-overview.ts';
import { openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';
import type { Device } from '../client/device.ts';
import { benchDevices } from './enroll.bench.ts';
import { loadFleet } from './fleet-load.ts';
import { load, rawRequest } from './http-load.ts';
import { issuerOf, ocspRequest } from './ocsp.bench.ts';
import { print, type BenchResult } from './report.ts';
import { cli, startBenchCa, type BenchCa } from './server-process.ts';

/**
 * `npm run simulate [-- --devices N --seconds S]`: a fleet of N synthetic
 * devices (two certificates each) loaded into a fresh PostgreSQL database,
 * then S seconds of traffic against `serve --workers 2`: real devices
 * renewing over ACME as fast as they can, OCSP from relying parties, and
 * operators revoking devices of the fleet. It prints what the fleet costs
 * (load rate, database size per million devices), what the traffic reached
 * (renewals/s against the fleet's daily need, p50/p99 latency, OCSP/s,
 * server memory), the CRL shards (time, sizes), the reports' latency, and
 * checks that nothing was lost. Loopback only, bounded, not in `npm test`.
 */
const { values: args } = parseArgs({
  options: {
    devices: { type: 'string', default: process.env.DEVID_SIM_DEVICES ?? '1000000' },
    seconds: { type: 'string', default: process.env.DEVID_SIM_SECONDS ?? '120' },
    renewers: { type: 'string', default: '64' },
    shards: { type: 'string', default: '64' },
    json: { type: 'boolean', default: false },
  },
});
const DEVICES = Number(args.devices);
const SECONDS = Number(args.seconds);
const RENEWERS = Number(args.renewers);
const SHARDS = Number(args.shards);
const say = (line: string) => process.stderr.write(`simulate: ${line}\n`);

const MiB = 2 ** 20;
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;

async function databaseBytes(db: knexFactory.Knex): Promise<number> {
  return Number((await db.raw('select pg_database_size(current_database()) as n')).rows[0].n);
}

/** Each table's size with its indexes and TOAST, in bytes. */
async function tableBytes(db: knexFactory.Knex): Promise<Map<string, number>> {
  const { rows } = await db.raw(`select relname as name, pg_total_relation_size(c.oid) as n from pg_class c join pg_namespace s on s.oid = c.relnamespace
    where s.nspname = current_schema() and c.relkind = 'r'`);
  return new Map((rows as Array<{ name: string; n: string }>).map((r) => [r.name, Number(r.n)]));
}

async function auditEvents(db: knexFactory.Knex): Promise<number> {
  return Number((await db.raw('select (select count(*) from audit_events) + (select count(*) from audit_pending) as n')).rows[0].n);
}

/** Renewals from `devices` in parallel until the deadline: each one's latency. */
async function renewFor(devices: readonly Device[], ms: number): Promise<{ latencies: number[]; errors: number }> {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + ms;
  await Promise.all(devices.map(async (device) => {
    while (performance.now() < deadline) {
      const started = performance.now();
      try {
        await device.enroll({ keepFiles: true });
        latencies.push(performance.now() - started);
      } catch {
        errors += 1;
      }
    }
  }));
  return { latencies: latencies.sort((a, b) => a - b), errors };
}

/** One fleet device revoked every `everyMs` until the deadline, through the operator API: the serials revoked. */
async function revokeFor(bench: BenchCa, prefix: string, ms: number, everyMs: number): Promise<{ revoked: string[]; errors: number }> {
  const revoked: string[] = [];
  let errors = 0;
  const deadline = performance.now() + ms;
  for (let i = 1; performance.now() < deadline; i += 1) {
    const n = ((i * 7919) % DEVICES) + 1; // spread over the fleet
    if (n % 100 === 0) continue; // loaded as suspended, its certificate revoked already
    const serial = `${prefix}${n}`;
    const answer = await bench.call('POST', `/operator/v1/devices/${serial}/revoke`, bench.operatorToken, { reason: 'keyCompromise' });
    if (answer.status === 200) revoked.push(serial);
    else errors += 1;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return { revoked, errors };
}

/** OCSP from `connections` keep-alive relying parties, in one-second windows until the deadline. */
async function ocspFor(port: number, requests: Buffer[], ms: number): Promise<{ rate: number; errors: number }> {
  let answers = 0;
  let errors = 0;
  const started = performance.now();
  while (performance.now() - started < ms) {
    const window = await load({ port, requests, connections: 4, keepAlive: true, ms: 1000 });
    answers += window.rate;
    errors += window.errors;
  }
  return { rate: answers / ((performance.now() - started) / 1000), errors };
}

async function simulate(): Promise<BenchResult[]> {
  const bench = await startBenchCa('postgres', RENEWERS * 2, ['--workers', '2'], { DEVID_CRL_SHARDS: `operational=${SHARDS}` });
  if (!bench) return [{ name: 'simulate', value: 0, unit: '', note: 'skipped: no PostgreSQL at 127.0.0.1:5432' }];
  const db = knexFactory({ client: 'pg', connection: bench.env.DEVID_DATABASE_URL, pool: { min: 0, max: 2 } });
  const prefix = 'SIM-';
  const results: BenchResult[] = [];
  let renewers: Device[] = [];
  try {
    const empty = await databaseBytes(db);
    say(`loading ${DEVICES.toLocaleString('en')} devices and ${(2 * DEVICES).toLocaleString('en')} certificates…`);
    const loadStarted = performance.now();
    await loadFleet(db, prefix, DEVICES, {
      chunk: 250_000, shards: SHARDS, revokedEvery: 100,
      progress: (loaded, total) => say(`  ${loaded.toLocaleString('en')} / ${total.toLocaleString('en')} devices (${Math.round(loaded / ((performance.now() - loadStarted) / 1000))}/s)`),
    });
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const loaded = await databaseBytes(db);
    results.push({ name: 'simulate.load', value: (3 * DEVICES) / loadSeconds, unit: 'rows/s', note: `${DEVICES.toLocaleString('en')} devices, ${(2 * DEVICES).toLocaleString('en')} certificates in ${loadSeconds.toFixed(0)} s, counters and due dates rebuilt` });
    results.push({ name: 'simulate.database-size', value: ((loaded - empty) / MiB / DEVICES) * 1e6, unit: 'MiB/M devices', note: `${((loaded - empty) / MiB).toFixed(0)} MiB for the fleet, indexes included` });

    say(`births for ${RENEWERS} renewing devices, and OCSP responses for a working set…`);
    renewers = await benchDevices(bench, RENEWERS);
    for (const device of renewers) await device.enroll({ keepFiles: true });
    const issuer = await db('ca_certificates').select('id', 'der').where({ role: 'operational', active: true }).first();
    const working = (await db('certificates').select('serial').where({ kind: 'operational', issuer_id: issuer.id }).whereLike('device_serial', `${prefix}%`).limit(10_000)).map((r: { serial: string }) => r.serial);
    await db.raw(`insert into ocsp_responses (serial, issuer_id, not_after, updated_at) select serial, issuer_id, not_after, now() from certificates where serial = any(?) on conflict do nothing`, [working]);
    for (;;) {
      const { n } = await db('ocsp_responses').whereNull('sha1').count({ n: '*' }).first() as { n: string };
      if (Number(n) === 0) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const port = Number(bench.http.split(':')[1]);
    const ocspRequests = working.map((serial) => rawRequest('POST', '/ocsp', ocspRequest(issuerOf(issuer.der), serial)));

    const beforeTraffic = await databaseBytes(db);
    const eventsBefore = await auditEvents(db);
    const tablesBefore = await tableBytes(db);
    say(`${SECONDS} s of traffic: ${RENEWERS} devices renewing, 4 OCSP relying parties, an operator revoking a device every 250 ms…`);
    const cpuBefore = bench.server.cpuMs();
    const [renewals, ocsp, revocations] = await Promise.all([
      renewFor(renewers, SECONDS * 1000), ocspFor(port, ocspRequests, SECONDS * 1000), revokeFor(bench, prefix, SECONDS * 1000, 250),
    ]);
    const cpuPerRenewal = (bench.server.cpuMs() - cpuBefore) / Math.max(1, renewals.latencies.length);
    const rss = bench.server.rssMiB().filter((m) => m > 0);
    const afterTraffic = await databaseBytes(db);
    const events = (await auditEvents(db)) - eventsBefore;
    const grown = [...(await tableBytes(db))].map(([name, n]) => [name, n - (tablesBefore.get(name) ?? 0)] as const).filter(([, n]) => n > 0).sort((a, b) => b[1] - a[1]);
    const perRenewal = (n: number) => `${(n / 1024 / Math.max(1, renewals.latencies.length)).toFixed(1)} KiB`;
    const rate = renewals.latencies.length / SECONDS;
    const dailyNeed = DEVICES / 86_400;
    results.push({ name: 'simulate.renewals', value: rate, unit: 'ops/s', note: `the fleet renewing daily needs ${dailyNeed.toFixed(1)}/s on average (ratio ${(rate / dailyNeed).toFixed(2)}); p50 ${percentile(renewals.latencies, 50).toFixed(0)} ms, p99 ${percentile(renewals.latencies, 99).toFixed(0)} ms; ${cpuPerRenewal.toFixed(1)} ms server CPU each (OCSP and revocations included)${renewals.errors ? `; ${renewals.errors} failed` : ''}` });
    results.push({ name: 'simulate.audit-events', value: events / Math.max(1, renewals.latencies.length), unit: 'events/renewal', note: `${events} audit events during the traffic (the revocations' included): the audit chain must take ${((events / Math.max(1, renewals.latencies.length)) * dailyNeed).toFixed(1)} events/s for this fleet renewing daily` });
    results.push({ name: 'simulate.ocsp', value: ocsp.rate, unit: 'ops/s', note: `4 keep-alive connections during the renewals, a working set of ${working.length.toLocaleString('en')} certificates${ocsp.errors ? `; ${ocsp.errors} errors` : ''}` });
    results.push({ name: 'simulate.revocations', value: revocations.revoked.length, unit: 'devices', note: `revoked through the operator API during the traffic${revocations.errors ? `; ${revocations.errors} refused` : ''}` });
    results.push({ name: 'simulate.server-rss', value: Math.max(...rss), unit: 'MiB', note: `each process: ${rss.map((m) => m.toFixed(0)).join(' + ')} MiB (primary and 2 workers); target under 512 MiB` });
    results.push({ name: 'simulate.growth', value: ((afterTraffic - beforeTraffic) / MiB / Math.max(1, renewals.latencies.length)) * 1e6, unit: 'MiB/M renewals', note: `database growth during the traffic (${((afterTraffic - beforeTraffic) / MiB).toFixed(1)} MiB) per million renewals: certificates, OCSP responses, audit events, Merkle tiles, ACME state, the revocations' share; per renewal by table: ${grown.slice(0, 6).map(([name, n]) => `${name} ${perRenewal(n)}`).join(', ')}` });

    say('CRLs: every shard signed again…');
    const crlStarted = performance.now();
    cli(['crl', 'publish'], bench.env);
    const crlSeconds = (performance.now() - crlStarted) / 1000;
    const shards = (await db.raw(`select distinct on (shard) shard, entries, size from crls where issuer_id = ? order by shard, number desc`, [issuer.id])).rows as Array<{ shard: number; entries: number; size: string }>;
    const sharded = shards.filter((s) => s.shard !== -1);
    const largest = Math.max(0, ...sharded.map((s) => Number(s.size)));
    const entries = sharded.reduce((sum, s) => sum + Number(s.entries), 0);
    results.push({ name: 'simulate.crl', value: crlSeconds, unit: 's', note: `${sharded.length} shards of the operational CA, ${entries.toLocaleString('en')} entries, largest ${(largest / MiB).toFixed(2)} MiB (target 10 MB), through devid-ca crl publish` });

    say('reports…');
    const reportStarted = performance.now();
    const rotation = await bench.call('GET', '/operator/v1/reports/rotation', bench.operatorToken, undefined);
    const rotationMs = performance.now() - reportStarted;
    const store = new Store(openDatabase({ kind: 'postgres', url: bench.env.DEVID_DATABASE_URL! }));
    try {
      await fleetOverview(store, new Date());
      const overviewStarted = performance.now();
      await fleetOverview(store, new Date());
      results.push({ name: 'simulate.report.fleet', value: performance.now() - overviewStarted, unit: 'ms', note: 'the console\'s fleet overview (counters); target under 1 s' });
    } finally {
      await store.close();
    }
    results.push({ name: 'simulate.report.rotation', value: rotationMs, unit: 'ms', note: `${String(rotation.json.devices)} devices behind (the revoked and suspended are not in service); target under 1 s` });

    say('checking that nothing was lost…');
    const issued = Number((await db('certificates').count({ n: '*' }).where({ kind: 'operational' }).whereLike('device_serial', 'SN-B%').first() as { n: string }).n);
    const expected = renewals.latencies.length + renewers.length;
    const stillLive = Number((await db('certificates').count({ n: '*' }).whereIn('device_serial', revocations.revoked).where({ kind: 'operational' }).whereNull('revoked_at').first() as { n: string }).n);
    let verified = 'passed';
    try {
      cli(['audit', 'verify'], bench.env);
    } catch (err) {
      verified = `failed: ${(err as Error).message.trim().split('\n').pop()}`;
    }
    const lost = issued - expected;
    results.push({ name: 'simulate.lost', value: Math.abs(lost) + stillLive + (verified === 'passed' ? 0 : 1), unit: 'faults', note: `${issued} operational certificates for ${expected} renewals; ${stillLive} certificates of revoked devices still live; audit verify ${verified}` });
    return results;
  } finally {
    for (const device of renewers) rmSync(device.dir, { recursive: true, force: true });
    await db.destroy();
    await bench.close();
  }
}

const results = await simulate();
print(results, args.json ?? false);
