import { expect } from 'chai';
import type { Knex } from 'knex';
import { AuditLog } from '../registry/audit/audit-log.ts';
import { DomainError } from '../errors/domain-error.ts';
import { createToken, authenticateToken, revokeToken } from '../server/tokens.ts';
import { migrate, openDatabase } from '../store/database.ts';
import { MIGRATIONS } from '../migrations/index.ts';
import * as x509 from '@peculiar/x509';
import { Store } from '../store/store.ts';
import { StoreConflictError, type AcmeAccountRecord, type AcmeAuthorizationRecord, type AcmeOrderRecord, type CertificateRecord, type DeviceRecord } from '../store/types.ts';
import { standInIssuer } from './support/stand-in-issuer.ts';
import { createTestDatabase, DATABASE_KINDS, type TestDatabase } from './support/databases.ts';
import { createHash, webcrypto } from 'node:crypto';

/** Edits the log as an attacker with database access would: bypassing the append-only trigger. */
async function tamper(db: Knex, sql: string, bindings: unknown[] = []): Promise<void> {
  await db.transaction(async (trx) => {
    await trx.raw('set local session_replication_role = replica');
    await trx.raw(sql, bindings as Knex.RawBinding[]);
  });
}

function certificate(serial: string, issuerId: number): CertificateRecord {
  const now = new Date();
  return {
    serial, kind: 'birth', issuerId, deviceSerial: 'SN-1', subject: 'CN=m', der: Buffer.from(serial),
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

    let issuerId: number;

    beforeEach(async () => {
      database = await createTestDatabase(kind);
      db = openDatabase(database.location);
      await migrate(db, database.location);
      store = new Store(db);
      issuerId = await standInIssuer(store, 'factory');
    });
    afterEach(async () => {
      await store.close();
      await database.drop();
    });

    it('migrations are idempotent', async () => {
      await migrate(db, database.location);
      expect(await store.certificates.count()).to.equal(0);
    });

    it('migration 004 gives existing certificates their issuer row, and the CA rows their SKI and key', async () => {
      const old = await createTestDatabase(kind);
      const legacy = openDatabase(old.location);
      try {
        const source = (steps: typeof MIGRATIONS): Knex.MigrationSource<[string, Knex.Migration]> => ({
          getMigrations: async () => [...steps], getMigrationName: ([name]) => name, getMigration: async ([, migration]) => migration,
        });
        await legacy.migrate.latest({ migrationSource: source(MIGRATIONS.slice(0, 3)), tableName: 'schema_migrations' });
        const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
        const ca = await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=old factory', keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' }, extensions: [await x509.SubjectKeyIdentifierExtension.create(keys.publicKey)] });
        const now = new Date();
        await legacy('ca_certificates').insert({ name: 'factory', serial: 'ca-old', der: Buffer.from(ca.rawData), key_label: 'devid-factory', key_id: Buffer.alloc(16), not_after: now, created_at: now, active: true });
        await legacy('certificates').insert({ serial: '0c', kind: 'birth', issuer: 'factory', device_serial: 'SN-1', subject: 'CN=m', der: Buffer.from('x'), sha256: 's', key_sha256: 'k', not_before: now, not_after: now, created_at: now });
        await migrate(legacy, old.location);
        const migrated = new Store(legacy);
        const [row] = await migrated.caCertificates.all();
        expect([row!.role, row!.generation, row!.ski.toString('hex')]).to.deep.equal(['factory', 1, ca.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId]);
        expect(row!.publicKey.equals(Buffer.from(ca.publicKey.rawData))).to.equal(true);
        expect((await migrated.certificates.find('0c'))!.issuerId).to.equal(row!.id);
      } finally {
        await legacy.destroy();
        await old.drop();
      }
    });

    it('records certificates; a taken serial is a conflict', async () => {
      await store.certificates.insert(certificate('0a', issuerId));
      const found = (await store.certificates.find('0a'))!;
      expect(found.der.equals(Buffer.from('0a'))).to.equal(true);
      expect(found.notAfter).to.be.instanceOf(Date);
      expect(found.issuerId).to.equal(issuerId);
      const err = await store.certificates.insert({ ...certificate('0a', issuerId), sha256: 'other' }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(StoreConflictError);
      expect(await store.certificates.byDevice('SN-1')).to.have.length(1);
    });

    it('a certificate must point at a recorded CA certificate', async () => {
      const err = await store.certificates.insert(certificate('0b', issuerId + 1000)).catch((e: unknown) => e);
      expect(String(err)).to.contain('foreign key');
    });

    it('a lineage fork is impossible: one operational successor per predecessor', async () => {
      const operational = (serial: string): CertificateRecord => ({ ...certificate(serial, issuerId), kind: 'operational', sha256: `sha-${serial}`, predecessorSha256: 'birth-hash' });
      await store.certificates.insert(operational('01'));
      const err = await store.certificates.insert(operational('02')).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(StoreConflictError);
      expect((err as StoreConflictError).constraint).to.equal('certificates_one_successor');
    });

    it('ACME quotas are counted in the insert itself: unrecorded accounts, live orders per account', async () => {
      const now = new Date();
      const account = (id: string): AcmeAccountRecord => ({ id, thumbprint: `t-${id}`, jwk: { kty: 'EC' }, status: 'valid', contact: [], recorded: false, createdAt: now, updatedAt: now });
      expect(await store.acme.insertAccount(account('a1'), 2)).to.equal(true);
      expect(await store.acme.insertAccount(account('a2'), 2)).to.equal(true);
      expect(await store.acme.insertAccount(account('a3'), 2), 'the third of two').to.equal(false);
      expect(await store.acme.account('a3')).to.equal(undefined);
      expect(await store.acme.insertAccount({ ...account('a4'), thumbprint: 't-a1' }, 9).catch((e: unknown) => e)).to.be.instanceOf(StoreConflictError);
      const expiresAt = new Date(now.getTime() + 60_000);
      const order = (id: string, expires = expiresAt): [AcmeOrderRecord, AcmeAuthorizationRecord] => [
        { id, accountId: 'a1', deviceSerial: 'SN-1', status: 'pending', expiresAt: expires, replaces: null, replacesCertId: null, replacesClaimed: false, attestedSpki: null, attestedBy: null, firmware: null, certificateSerial: null, error: null, createdAt: now, updatedAt: now, identifier: null },
        { id: `z-${id}`, orderId: id, status: 'pending', expiresAt: expires, token: `tok-${id}`, challengeStatus: 'pending', challengeValidatedAt: null, challengeError: null, createdAt: now },
      ];
      expect(await store.acme.insertOrder(...order('o-old', new Date(now.getTime() - 1000)), 1), 'an expired order does not count').to.equal(true);
      expect(await store.acme.insertOrder(...order('o1'), 1)).to.equal(true);
      expect(await store.acme.insertOrder(...order('o2'), 1), 'one live order at most').to.equal(false);
      expect(await store.acme.order('o2')).to.equal(undefined);
      expect((await store.acme.authorizationWithOrder('z-o1'))?.order.id).to.equal('o1');
      expect(await store.acme.authorizationWithOrder('z-o2')).to.equal(undefined);
    });

    it('an accepted attestation moves the order, its authorization and records the account in one statement, or moves nothing', async () => {
      const now = new Date();
      await store.acme.insertAccount({ id: 'a1', thumbprint: 't', jwk: { kty: 'EC' }, status: 'valid', contact: [], recorded: false, createdAt: now, updatedAt: now }, 9);
      const expiresAt = new Date(now.getTime() + 60_000);
      await store.acme.insertOrder(
        { id: 'o1', accountId: 'a1', deviceSerial: 'SN-1', status: 'pending', expiresAt, replaces: null, replacesCertId: null, replacesClaimed: false, attestedSpki: null, attestedBy: null, firmware: null, certificateSerial: null, error: null, createdAt: now, updatedAt: now, identifier: { type: 'hardware-module', value: 'SN-1/1.3.6.1.4.1.99999.1.2' } },
        { id: 'z1', orderId: 'o1', status: 'pending', expiresAt, token: 'tok', challengeStatus: 'pending', challengeValidatedAt: null, challengeError: null, createdAt: now }, 9,
      );
      expect((await store.acme.account('a1'))!.recorded).to.equal(false);
      const accept = () => store.acme.moveOrderAndAuthorization(
        { id: 'o1', from: ['pending'], to: 'ready', fields: { attestedSpki: Buffer.from('spki'), attestedBy: 'birth-sha' } },
        { id: 'z1', from: ['pending'], to: 'valid', challenge: 'valid' }, 'a1', now,
      );
      const moved = await accept();
      expect([moved?.order.status, moved?.order.attestedSpki?.toString(), moved?.authz.status, moved?.authz.challengeStatus, moved?.recorded]).to.deep.equal(['ready', 'spki', 'valid', 'valid', true]);
      expect((await store.acme.account('a1'))!.recorded, 'the cache forgot the account when it was written').to.equal(true);
      expect(await accept(), 'not pending any more: nothing moves').to.equal(undefined);
      expect((await store.acme.authorizationWithOrder('z1'))!.order.status).to.equal('ready');
    });

    it('device state changes are compare-and-set: of two racing moves one applies', async () => {
      const now = new Date();
      const device: DeviceRecord = {
        serial: 'SN-CAS', model: 'm', batch: 'b', line: 'l', deviceClass: null, owner: null, state: 'active', manufacturer: 'self',
        factoryKeySha256: 'k', reprovisionAllowed: false, signCount: 0, factoryAttestedAt: null, createdAt: now, updatedAt: now,
      };
      await store.devices.insert(device);
      const moves = await Promise.all([
        store.transaction((tx) => tx.devices.transition('SN-CAS', ['active'], 'suspended', now)),
        store.transaction((tx) => tx.devices.transition('SN-CAS', ['active'], 'decommissioned', now)),
      ]);
      expect(moves.filter((m) => m !== undefined)).to.have.length(1);
      expect(await store.devices.transition('SN-NONE', ['active'], 'suspended', now)).to.equal(undefined);
      // Only the state columns change: the binding stays as it was.
      const after = (await store.devices.find('SN-CAS'))!;
      expect([after.model, after.batch, after.factoryKeySha256]).to.deep.equal(['m', 'b', 'k']);
    });

    describe('tokens', () => {
      it('stores only a hash; authenticates the real token and nothing else', async () => {
        await store.models.insert({ name: 'thermo-2', hwType: '1.2.3', manufacturer: 'A', defaultClass: null, createdAt: new Date(), updatedAt: new Date() });
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
        const requests = [
          { role: 'root' }, { role: 'factory' }, { role: 'vendor' }, { role: 'operator', line: 'x' }, { role: 'operator', name: 'bad name!' },
          { role: 'factory', line: 'l1', models: ['not-declared'] },
        ];
        for (const request of requests) {
          const err = await createToken(store, audit, request, 'cli', new Date()).catch((e: unknown) => e);
          expect(err, JSON.stringify(request)).to.be.instanceOf(DomainError);
        }
        expect(await store.tokens.list()).to.have.length(0);
        expect(await store.audit.count()).to.equal(0);
      });
    });

    describe('audit log', () => {
      async function appendMany(n: number): Promise<void> {
        for (let i = 0; i < n; i += 1) {
          await audit.recordAlone(store, { action: 'test.event', actor: 'cli', device: `SN-${i % 2}`, data: { i } });
        }
      }

      it('chains events and verifies the untouched chain', async () => {
        await appendMany(5);
        const result = await audit.verify(store);
        expect(result).to.include({ ok: true, events: 5 });
        const first = AuditLog.parse((await store.audit.page(0, 1))[0]!);
        expect(first.prev).to.equal('0'.repeat(64));
      });

      it('an audited action is its own transaction; a failed action leaves no event', async () => {
        const nested = await store.transaction((tx) => audit.recordAlone(tx, { action: 'x', actor: 'cli' })).catch((e: unknown) => e);
        expect(String(nested)).to.contain('its own transaction');
        await audit.record(store, async (tx) => {
          await tx.devices.count();
          throw new Error('the action failed');
        }).catch(() => undefined);
        expect(await store.audit.count()).to.equal(0);
        // Several events of one action are appended together, in order, after its writes.
        await audit.record(store, async () => ({ value: 1, events: [{ action: 'a', actor: 'cli' }, { action: 'b', actor: 'cli' }] }));
        expect((await store.audit.page(0, 10)).map((e) => e.action)).to.deep.equal(['a', 'b']);
        expect(await audit.verify(store)).to.include({ ok: true, events: 2 });
      });

      it('the chain lock refuses any isolation level but READ COMMITTED', async () => {
        const err = await db.transaction(async (trx) => {
          await trx.raw('set transaction isolation level repeatable read');
          await new Store(trx).audit.lockChain();
        }).catch((e: unknown) => e);
        expect(String(err)).to.contain('READ COMMITTED');
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
          audit.recordAlone(store, { action: 'test.concurrent', actor: 'cli', data: { i } })));
        expect(await audit.verify(store)).to.include({ ok: true, events: 20 });
      });

      it('group commit: actions from two processes (two pools, two logs) commit side by side and form one chain, nothing left pending', async () => {
        const second = openDatabase(database.location);
        try {
          const other = new Store(second);
          const otherLog = new AuditLog(() => new Date());
          const pglite = kind === 'pglite';
          // PGlite is one connection: the second "process" is the same database handle.
          const [storeB, logB] = pglite ? [store, audit] : [other, otherLog];
          await Promise.all(Array.from({ length: 60 }, (_, i) => (i % 2 === 0 ? audit.recordAlone(store, { action: 'test.a', actor: 'cli', data: { i } }) : logB.recordAlone(storeB, { action: 'test.b', actor: 'cli', data: { i } }))));
          expect(await audit.verify(store)).to.include({ ok: true, events: 60 });
          expect(await store.audit.anyPending()).to.equal(false);
        } finally {
          await second.destroy();
        }
      });

      it('events committed by a process that died before chaining them are chained by the next run, anyone\'s', async () => {
        await appendMany(2);
        // The action's transaction committed its pending events; the process was killed before chaining.
        await store.transaction((tx) => tx.audit.insertPending([
          { canonicalPrefix: '{"action":"test.orphan","actor":"cli","at":"2026-11-24T00:00:00.000Z","data":{"n":1},', action: 'test.orphan', deviceSerial: null },
          { canonicalPrefix: '{"action":"test.orphan","actor":"cli","at":"2026-11-24T00:00:00.000Z","data":{"n":2},', action: 'test.orphan', deviceSerial: null },
        ]));
        expect(await store.audit.anyPending()).to.equal(true);
        expect(await audit.verify(store)).to.include({ ok: true, events: 2 });
        await new AuditLog(() => new Date()).chain(store);
        expect(await store.audit.anyPending()).to.equal(false);
        expect(await audit.verify(store)).to.include({ ok: true, events: 4 });
        expect(JSON.parse((await store.audit.bySeq(4))!.canonical)).to.include({ action: 'test.orphan', seq: 4 });
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
