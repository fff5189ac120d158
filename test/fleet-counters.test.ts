import { expect } from 'chai';
import type { Knex } from 'knex';
import { migrate, openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';
import { rotationReport } from '../registry/reports/rotation-report.ts';
import { standInIssuer } from './support/stand-in-issuer.ts';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.ts';

const HOUR = 3600_000;

/** A small deterministic generator, so a failure replays. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

/** The rotation report's devices as the whole-fleet scan found them before the counters: the reference the indexed query must agree with. */
async function scannedRotation(db: Knex, now: Date): Promise<string[]> {
  const { rows } = await db.raw(
    `with latest as (
       select distinct on (device_serial) device_serial, serial, not_before, not_after, revoked_at
       from certificates where kind = 'operational' and device_serial is not null
       order by device_serial, created_at desc, serial desc
     )
     select d.serial from devices d
     left join latest l on l.device_serial = d.serial
     left join device_classes own on own.name = d.device_class
     left join models m on m.name = d.model
     left join device_classes mc on mc.name = m.default_class
     join device_classes dflt on dflt.name = 'default'
     where d.state in ('manufactured', 'active')
       and (l.serial is null or l.revoked_at is not null
            or l.not_before + (l.not_after - l.not_before) * 5 / 6 <= ?
            or d.factory_attested_at is null
            or d.factory_attested_at + make_interval(secs => coalesce(own.factory_reattest_every_seconds, mc.factory_reattest_every_seconds, dflt.factory_reattest_every_seconds)) <= ?)
     order by d.serial`,
    [now, now],
  );
  return (rows as Array<{ serial: string }>).map((r) => r.serial);
}

/** Every counted column's values as a full count would give them (null as ''). */
async function scannedCounts(db: Knex): Promise<Record<string, Record<string, number>>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const [dimension, column] of [['state', 'state'], ['model', 'model'], ['class', 'device_class'], ['owner', 'owner']] as const) {
    const rows = await db('devices').select({ value: column }).count({ n: '*' }).groupBy(column);
    counts[dimension] = Object.fromEntries((rows as Array<{ value: string | null; n: string | number }>).map((r) => [r.value ?? '', Number(r.n)]));
  }
  const claims = await db('device_claims').select('manufacturer_id').count({ n: '*' }).groupBy('manufacturer_id');
  counts.claims = Object.fromEntries((claims as Array<{ manufacturer_id: string; n: string | number }>).map((r) => [r.manufacturer_id, Number(r.n)]));
  return counts;
}

async function keptCounts(db: Knex): Promise<Record<string, Record<string, number>>> {
  const rows = await db('fleet_counts').select('dimension', 'value').sum({ n: 'n' }).groupBy('dimension', 'value').havingRaw('sum(n) <> 0');
  const counts: Record<string, Record<string, number>> = { state: {}, model: {}, class: {}, owner: {}, claims: {} };
  for (const r of rows as Array<{ dimension: string; value: string; n: string | number }>) counts[r.dimension]![r.value] = Number(r.n);
  return counts;
}

for (const kind of DATABASE_KINDS) {
  describe(`fleet counters and rotation due dates on ${kind}: the reports read them instead of scanning the fleet, and they agree with a scan`, function () {
    this.timeout(120_000);
    let database: TestDatabase;
    let db: Knex;
    let store: Store;
    let issuerId: number;
    let certificates = 0;

    before(async () => {
      database = await createTestDatabase(kind);
      db = openDatabase(database.location);
      await migrate(db, database.location);
      store = new Store(db);
      const now = new Date();
      issuerId = await standInIssuer(store, 'operational');
      await db('device_classes').insert(['short', 'long'].map((name, i) => ({
        name, ttl_seconds: 3600, staged_renewal: false, factory_reattest_every_seconds: (i + 1) * 24 * 3600, server_auth: false, counter_required: false,
        on_clone_signal: 'refuse', created_at: now, updated_at: now,
      })));
      await db('manufacturers').insert(['mfr-a', 'mfr-b'].map((id) => ({ id, status: 'active', created_at: now, updated_at: now })));
      await db('models').insert(['m1', 'm2', 'm3'].map((name) => ({ name, hw_type: '1.3.6.1.4.1.1.1', manufacturer: 'acme', created_at: now, updated_at: now })));
    });
    after(async () => {
      await store?.close();
      await database?.drop();
    });

    async function issue(serial: string, notBefore: Date, notAfter: Date, createdAt: Date): Promise<string> {
      const id = `c${++certificates}`;
      await db('certificates').insert({
        serial: id, kind: 'operational', issuer_id: issuerId, device_serial: serial, subject: `CN=${serial}`, der: Buffer.from(id), sha256: `sha-${id}`,
        key_sha256: `key-${id}`, not_before: notBefore, not_after: notAfter, created_at: createdAt,
      });
      return id;
    }

    async function expectAgreement(now: Date): Promise<void> {
      expect(await keptCounts(db)).to.deep.equal(await scannedCounts(db));
      const report = await rotationReport(store, {}, now);
      const scanned = await scannedRotation(db, now);
      expect(report.entries.map((e) => e.serial)).to.deep.equal(scanned);
      expect(report.devices).to.equal(scanned.length);
      const total = Object.values((await scannedCounts(db)).state!).reduce((a, b) => a + b, 0);
      expect(await store.devices.count()).to.equal(total);
    }

    it('through births in bulk, enrollments, renewals, revocations, moves of state, owner, class and model, policy changes and deletions', async () => {
      const next = random(kind === 'pglite' ? 7 : 11);
      const pick = <T>(values: readonly T[]): T => values[Math.floor(next() * values.length)]!;
      const now = Date.now();
      // A bulk load is one statement: one grouped upsert of the counters.
      await db.raw(`insert into devices (serial, model, batch, line, state, factory_key_sha256, reprovision_allowed, sign_count, factory_attested_at, created_at, updated_at)
        select 'bulk-' || g, case when g % 3 = 0 then 'm1' else 'm2' end, 'b1', 'l1', 'manufactured', md5('fk' || g), false, 0,
               case when g % 5 = 0 then null else now() - interval '1 hour' end, now(), now() from generate_series(1, 60) g`);
      await expectAgreement(new Date(now));
      const serials = Array.from({ length: 60 }, (_, i) => `bulk-${i + 1}`);
      for (let step = 0; step < 120; step++) {
        const serial = pick(serials);
        const action = pick(['enroll', 'enroll', 'renew-late', 'revoke', 'state', 'owner', 'class', 'model', 'attest', 'policy', 'default-class', 'claim']);
        const at = new Date(now - Math.floor(next() * 48) * HOUR);
        switch (action) {
          case 'enroll': await issue(serial, at, new Date(at.getTime() + 24 * HOUR), new Date(now + step)); break;
          case 'renew-late': await issue(serial, new Date(now - 30 * HOUR), new Date(now - 6 * HOUR), new Date(now + step)); break;
          case 'revoke': await db('certificates').where({ device_serial: serial }).whereNull('revoked_at').update({ revoked_at: new Date(now - HOUR), revocation_reason: 1 }); break;
          case 'state': await db('devices').where({ serial }).update({ state: pick(['manufactured', 'active', 'suspended', 'retired']) }); break;
          case 'owner': await db('devices').where({ serial }).update({ owner: pick([null, 'alice', 'bob']) }); break;
          case 'class': await db('devices').where({ serial }).update({ device_class: pick([null, 'short', 'long']) }); break;
          case 'model': await db('devices').where({ serial }).update({ model: pick(['m1', 'm2', 'm3']) }); break;
          case 'attest': await db('devices').where({ serial }).update({ factory_attested_at: pick([null, new Date(now - 50 * HOUR), new Date(now - HOUR)]) }); break;
          case 'policy': await db('device_classes').where({ name: pick(['short', 'long', 'default']) }).update({ factory_reattest_every_seconds: pick([3600, 2 * 24 * 3600, 30 * 24 * 3600]) }); break;
          case 'default-class': await db('models').where({ name: pick(['m1', 'm2', 'm3']) }).update({ default_class: pick([null, 'short', 'long']) }); break;
          case 'claim':
            if (!(await db('device_claims').where({ device_serial: serial }).first())) {
              await db('device_claims').insert({ device_serial: serial, manufacturer_id: pick(['mfr-a', 'mfr-b']), birth_certificate_sha256: `birth-${serial}`, source: 'claim', claimed_by: 't', claimed_at: new Date() });
            }
            break;
        }
        if (step % 10 === 9) await expectAgreement(new Date(now));
      }
      // Devices without certificates may go (a test database's clean-up, an aborted birth): the counters follow.
      await db('device_claims').where({ manufacturer_id: 'mfr-a' }).delete();
      await db('devices').whereNotIn('serial', db('certificates').select('device_serial').whereNotNull('device_serial'))
        .whereNotIn('serial', db('device_claims').select('device_serial')).delete();
      await expectAgreement(new Date(now));
      // A later reader: the due dates are absolute, so the report moves with the clock without any write.
      await expectAgreement(new Date(now + 20 * HOUR));
    });
  });
}
