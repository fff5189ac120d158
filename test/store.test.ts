import { expect } from 'chai';
import type { Knex } from 'knex';
import { AuditLog } from '../registry/audit-log.ts';
import { createToken, authenticateToken, revokeToken, TokenRequestError } from '../server/tokens.ts';
import { migrate, openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';
import { StoreConflictError, type CertificateRecord } from '../store/types.ts';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.ts';
import { createHash } from 'node:crypto';

/** Edits the log as an attacker with database access would: bypassing the append-only trigger. */
async function tamper(db: Knex, sql: string, bindings: unknown[] = []): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('set local session_replication_role = replica');
    await trx.raw(sql, bindings as Knex.RawBinding[]);
  });
}

function certificate(serial: string): CertificateRecord {
  const now = new Date();
  return {
    serial, kind: 'birth', issuer: 'factory', deviceSerial: 'SN-1', subject: 'CN=m', der: Buffer.from(serial),
    sha256: `sha-${serial}`, keySha256: `key-${serial}`, predecessorSha256: null, notBefore: now, notAfter: now,
    revokedAt: null, revocationReason: null, createdAt: now,
  };
}

for (const kind of DATABASE_KINDS) {
  describe(`store on ${kind}`, () => {
    let database: TestDatabase;
    let db: Knex;
    let store: Store;
    const audit = new AuditLog(() => new Date());

    beforeEach(async () => {
      database = await createTestDatabase(kind);
      db = openDatabase(database.location);
      await migrate(db);
      store = new Store(db);
    });
    afterEach(async () => {
      await store.close();
      await database.drop();
    });

    it('migrations are idempotent', async () => {
      await migrate(db);
      expect(await store.certificates.count()).to.equal(0);
    });

    it('records certificates; a taken serial is a conflict', async () => {
      await store.certificates.insert(certificate('0a'));
      const found = (await store.certificates.bySerial('0a'))!;
      expect(found.der.equals(Buffer.from('0a'))).to.equal(true);
      expect(found.notAfter).to.be.instanceOf(Date);
      const err = await store.certificates.insert({ ...certificate('0a'), sha256: 'other' }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(StoreConflictError);
      expect(await store.certificates.byDevice('SN-1')).to.have.length(1);
    });

    describe('tokens', () => {
      it('stores only a hash; authenticates the real token and nothing else', async () => {
        const created = await createToken(store, audit, { role: 'factory', line: 'line-1', models: ['thermo-2'] }, 'cli', new Date());
        expect(created.name).to.equal(`factory-${created.id}`);
        const row = await db('tokens').where({ id: created.id }).first();
        expect(JSON.stringify(row)).not.to.contain(created.token.slice('devid_0123456789abcdef_'.length));
        const record = (await authenticateToken(store, created.token))!;
        expect([record.role, record.line, record.models]).to.deep.equal(['factory', 'line-1', ['thermo-2']]);
        const forged = created.token.slice(0, -1) + (created.token.endsWith('A') ? 'B' : 'A');
        expect(await authenticateToken(store, forged)).to.equal(undefined);
        expect(await authenticateToken(store, 'devid_0000000000000000_' + 'A'.repeat(43))).to.equal(undefined);
        expect(await authenticateToken(store, 'not a token')).to.equal(undefined);
        expect(await revokeToken(store, audit, created.id, 'cli', new Date())).to.equal(true);
        expect(await authenticateToken(store, created.token)).to.equal(undefined);
        expect(await revokeToken(store, audit, created.id, 'cli', new Date())).to.equal(false);
      });

      it('two tokens made without --name are two principals', async () => {
        const a = await createToken(store, audit, { role: 'operator' }, 'cli', new Date());
        const b = await createToken(store, audit, { role: 'operator' }, 'cli', new Date());
        expect(a.name).not.to.equal(b.name);
      });

      it('refuses requests that do not fit the role, writing nothing', async () => {
        for (const request of [{ role: 'root' }, { role: 'factory' }, { role: 'vendor' }, { role: 'operator', line: 'x' }, { role: 'operator', name: 'bad name!' }]) {
          const err = await createToken(store, audit, request, 'cli', new Date()).catch((e: unknown) => e);
          expect(err, JSON.stringify(request)).to.be.instanceOf(TokenRequestError);
        }
        expect(await store.tokens.list()).to.have.length(0);
        expect(await store.audit.count()).to.equal(0);
      });
    });

    describe('audit log', () => {
      async function appendMany(n: number): Promise<void> {
        for (let i = 0; i < n; i += 1) {
          await store.transaction((tx) => audit.append(tx, { action: 'test.event', actor: 'cli', device: `SN-${i % 2}`, data: { i } }));
        }
      }

      it('chains events and verifies the untouched chain', async () => {
        await appendMany(5);
        const result = await audit.verify(store);
        expect(result).to.include({ ok: true, events: 5 });
        const first = AuditLog.parse((await store.audit.page(0, 1))[0]!);
        expect(first.prev).to.equal('0'.repeat(64));
      });

      it('appends only inside a transaction; a failed action leaves no event', async () => {
        const err = await audit.append(store, { action: 'x', actor: 'cli' }).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(Error);
        await store.transaction(async (tx) => {
          await audit.append(tx, { action: 'x', actor: 'cli' });
          throw new Error('the action failed');
        }).catch(() => undefined);
        expect(await store.audit.count()).to.equal(0);
      });

      it('the database refuses UPDATE, DELETE and TRUNCATE', async () => {
        await appendMany(2);
        for (const sql of ["update audit_events set action = 'x'", 'delete from audit_events', 'truncate audit_events']) {
          const err = await db.raw(sql).catch((e: unknown) => e);
          expect(String(err), sql).to.contain('append-only');
        }
        expect(await store.audit.count()).to.equal(2);
      });

      it('concurrent appends leave one valid chain', async () => {
        await Promise.all(Array.from({ length: 20 }, (_, i) =>
          store.transaction((tx) => audit.append(tx, { action: 'test.concurrent', actor: 'cli', data: { i } }))));
        expect(await audit.verify(store)).to.include({ ok: true, events: 20 });
      });

      it('an edited event breaks the chain at that event', async () => {
        await appendMany(5);
        const row = (await store.audit.page(2, 1))[0]!;
        const edited = row.canonical.replace('"i":2', '"i":7');
        expect(edited).not.to.equal(row.canonical);
        await tamper(db, 'update audit_events set canonical = ? where seq = 3', [edited]);
        expect(await audit.verify(store)).to.include({ ok: false, brokenAt: 3 });
      });

      it('an edit that also rewrites the hash breaks the link of the next event', async () => {
        await appendMany(5);
        const row = (await store.audit.page(2, 1))[0]!;
        const edited = row.canonical.replace('"i":2', '"i":7');
        await tamper(db, 'update audit_events set canonical = ?, hash = ? where seq = 3', [edited, createHash('sha256').update(edited).digest('hex')]);
        expect(await audit.verify(store)).to.include({ ok: false, brokenAt: 4 });
      });

      it('a deleted event breaks the chain', async () => {
        await appendMany(5);
        await tamper(db, 'delete from audit_events where seq = 2');
        expect(await audit.verify(store)).to.include({ ok: false, brokenAt: 2 });
      });

      it('two reordered events break the chain', async () => {
        await appendMany(5);
        const [a, b] = await store.audit.page(1, 2);
        await tamper(db, 'update audit_events set canonical = ?, hash = ? where seq = 2', [b!.canonical, b!.hash]);
        await tamper(db, 'update audit_events set canonical = ?, hash = ? where seq = 3', [a!.canonical, a!.hash]);
        expect(await audit.verify(store)).to.include({ ok: false, brokenAt: 2 });
      });
    });
  });
}
