import { createHash } from 'node:crypto';
import { expect } from 'chai';
import type { Knex } from 'knex';
import { MIGRATIONS } from '../migrations/index.ts';
import { migrate, openDatabase } from '../store/database.ts';
import { Store } from '../store/store.ts';
import { createFirmwareCa, createModelFirmwareSigner } from '../server/firmware-ceremonies.ts';
import { createToken } from '../server/tokens.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { makeDevice, refused } from './support/acme-device.ts';
import { createTestDatabase, DATABASE_KINDS } from './support/databases.ts';
import { httpRequest } from './support/publication.ts';

const image = (n: number) => createHash('sha256').update(`legacy image ${n}`).digest();
const hex = (n: number) => image(n).toString('hex');

for (const kind of DATABASE_KINDS) describe(`migration 026 on ${kind}: a model's allowlist entries become legacy releases`, function () {
  this.timeout(120_000);

  it('live entries keep their version as name, withdrawn ones stay withdrawn, a version that cannot name a release or is taken gets legacy-<id>; devices keep the release they last attested on', async () => {
    const database = await createTestDatabase(kind);
    const db = openDatabase(database.location);
    try {
      const before026 = MIGRATIONS.slice(0, MIGRATIONS.findIndex(([name]) => name.startsWith('026_')));
      const source: Knex.MigrationSource<[string, Knex.Migration]> = {
        getMigrations: async () => [...before026], getMigrationName: ([name]) => name, getMigration: async ([, migration]) => migration,
      };
      await db.migrate.latest({ migrationSource: source, tableName: 'schema_migrations' });
      const at = new Date('2026-01-01T00:00:00Z');
      const later = new Date('2026-02-01T00:00:00Z');
      await db('models').insert({ name: 'old-1', hw_type: '1.3.6.1.4.1.99999.9', manufacturer: 'Acme', created_at: at, updated_at: at });
      await db('model_firmware').insert([
        { model: 'old-1', version: '1.0.0', digest: 'aa'.repeat(32), allowed_at: at, withdrawn_at: later }, // withdrawn, then listed again below
        { model: 'old-1', version: '1.0.0', digest: 'aa'.repeat(32), allowed_at: later, withdrawn_at: null },
        { model: 'old-1', version: 'v 2 (beta)', digest: 'bb'.repeat(48), allowed_at: at, withdrawn_at: null },
        { model: 'old-1', version: '0.9.0', digest: 'cc'.repeat(32), allowed_at: at, withdrawn_at: later },
      ]);
      await db('devices').insert({ serial: 'SN-OLD', model: 'old-1', batch: 'b', line: 'l', state: 'active', manufacturer: 'self', created_at: at, updated_at: at });
      await db('device_firmware').insert([
        { device_serial: 'SN-OLD', version: '0.9.0', digest: 'cc'.repeat(32), attested_at: at },
        { device_serial: 'SN-OLD', version: '1.0.0', digest: 'aa'.repeat(32), attested_at: later },
      ]);
      await migrate(db, database.location);
      const store = new Store(db);
      const releases = await store.firmwareReleases.byModel('old-1');
      const ids = (await db('model_firmware').select('id', 'version').orderBy('id')).map((r: { id: number }) => r.id);
      expect(releases.every((r) => r.legacy && r.sequence === 0 && r.envelope === null && r.approvedAt !== null && r.signerCertificateSerial === null)).to.equal(true);
      const byName = new Map(releases.map((r) => [r.version, r]));
      expect(byName.get('1.0.0')).to.include({ digest: 'aa'.repeat(32), legacy: true, sequence: 0, withdrawnAt: null });
      expect(byName.get(`legacy-${ids[2]}`)).to.include({ digest: 'bb'.repeat(48), legacy: true, withdrawnAt: null });
      expect(byName.get('0.9.0')!.withdrawnAt).to.be.instanceOf(Date);
      expect(byName.get(`legacy-${ids[0]}`)!.withdrawnAt).to.be.instanceOf(Date);
      expect(releases).to.have.length(4);
      expect(await store.firmwareReleases.liveLegacy('old-1')).to.have.deep.members([{ version: '1.0.0', digest: 'aa'.repeat(32) }, { version: `legacy-${ids[2]}`, digest: 'bb'.repeat(48) }]);
      expect((await db('devices').select('firmware_version').where({ serial: 'SN-OLD' }).first()).firmware_version).to.equal('1.0.0');
      // Check 5 reads them as releases: the attestation view carries them, legacy.
      const view = await store.devices.getForAttestation('SN-OLD');
      expect(view.firmware.releases.filter((r) => !r.withdrawn).map((r) => [r.digest, r.legacy])).to.have.deep.members([['aa'.repeat(32), true], ['bb'.repeat(48), true]]);
      expect(view.firmware.legacyUntil).to.equal(null);
    } finally {
      await db.destroy();
      await database.drop();
    }
  });
});

describe('legacy releases: the allowlist as unsigned releases, accepted until the model\'s cut-off; then 410', function () {
  this.timeout(180_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let bob: string;
  const operator = (method: string, path: string, body?: unknown) => server.request(method, path, { token: server.tokens.operator, ...(body === undefined ? {} : { body }) });

  before(async () => {
    server = await startTestServer('pglite');
    await createFirmwareCa(server.env.ctx, 'cli');
    await createModelFirmwareSigner(server.env.ctx, 'thermo-2', 'cli');
    bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
  });
  after(() => server?.close());

  it('PUT .../firmware makes legacy releases: listed with the releases, unsigned, no envelope; enrolls; removal withdraws, listing again reinstates', async () => {
    const put = await operator('PUT', '/operator/v1/models/thermo-2/firmware', { allowed: [{ version: '0.9.0', digest: hex(9) }, { version: '0.9.1', digest: hex(91) }] });
    expect(put.status, put.text).to.equal(200);
    expect((await operator('GET', '/operator/v1/models/thermo-2/firmware')).json.allowed).to.deep.equal([{ version: '0.9.0', digest: hex(9) }, { version: '0.9.1', digest: hex(91) }]);
    const listed = await operator('GET', '/operator/v1/models/thermo-2/firmware-releases');
    const legacy = (listed.json.releases as Array<Record<string, unknown>>).find((r) => r.version === '0.9.0')!;
    expect(legacy).to.include({ legacy: true, status: 'approved', envelope: null, signer: null, manifestSha256: null, size: null, sequence: 0, approvedBy: 'alice' });
    expect((await httpRequest(server.running.httpPort, 'GET', '/firmware/thermo-2/0.9.0.suit')).status).to.equal(404);
    const device = await makeDevice(server, 'SN-LEG1');
    await device.enroll({ firmware: { version: 'whatever', digest: image(9) } });
    const history = await server.request('GET', '/audit/v1/devices/SN-LEG1/history', { token: server.tokens.auditor });
    expect(history.json.firmware.map((f: { version: string; release?: unknown }) => [f.version, f.release])).to.deep.equal([['0.9.0', { version: '0.9.0', sequence: 0, manifestSha256: null, signer: null, legacy: true }]]);
    // 0.9.1 left out: withdrawn (its devices renew now); listed again: accepted again, one row.
    expect((await operator('PUT', '/operator/v1/models/thermo-2/firmware', { allowed: [{ version: '0.9.0', digest: hex(9) }] })).status).to.equal(200);
    expect((await operator('GET', '/operator/v1/models/thermo-2/firmware-releases/0.9.1')).json).to.include({ status: 'withdrawn', withdrawReason: 'removed from the allowlist' });
    expect((await operator('PUT', '/operator/v1/models/thermo-2/firmware', { allowed: [{ version: '0.9.0', digest: hex(9) }, { version: '0.9.1', digest: hex(91) }] })).status).to.equal(200);
    expect((await operator('GET', '/operator/v1/models/thermo-2/firmware-releases/0.9.1')).json).to.include({ status: 'approved', withdrawnAt: null });
    // A version is one release: another digest under a legacy version, or a legacy entry named like a signed release, is 409.
    expect((await operator('PUT', '/operator/v1/models/thermo-2/firmware', { allowed: [{ version: '0.9.0', digest: hex(9) }, { version: '0.9.1', digest: hex(92) }] })).status).to.equal(409);
    const proposed = await operator('POST', '/operator/v1/models/thermo-2/firmware-releases', { version: '1.0.0', digest: hex(10), size: 100, sequence: 10 });
    expect(proposed.status, proposed.text).to.equal(201);
    expect((await server.request('POST', '/operator/v1/models/thermo-2/firmware-releases/1.0.0/approve', { token: bob, body: { proposal: proposed.json.proposal } })).status).to.equal(200);
    expect((await operator('PUT', '/operator/v1/models/thermo-2/firmware', { allowed: [{ version: '1.0.0', digest: hex(1) }] })).status).to.equal(409);
    for (const bad of [{ allowed: [{ version: '../x', digest: hex(1) }] }, { allowed: [{ version: 'a', digest: hex(1) }, { version: 'a', digest: hex(2) }] }]) {
      expect((await operator('PUT', '/operator/v1/models/thermo-2/firmware', bad)).status, JSON.stringify(bad)).to.equal(400);
    }
    const audited = await server.env.ctx.store.audit.recentByActions(['model.firmware-policy'], 10);
    expect(audited.length).to.be.at.least(3);
  });

  it('a device that ran a signed release cannot go back to a legacy one (sequence 0): no rollback', async () => {
    const device = await makeDevice(server, 'SN-LEG2');
    await device.enroll({ firmware: { version: '0.9.0', digest: image(9) } });
    await device.enroll({ firmware: { version: '1.0.0', digest: image(10) } });
    await refused(device, { firmware: { version: '0.9.0', digest: image(9) } }, 'badAttestationStatement', /check 5 \(firmware\).*legacy release 0\.9\.0.*below the floor 10/);
  });

  it('the cut-off: checked, audited, movable until it passes; then legacy releases are refused naming it, the allowlist answers 410, and the cut-off is final', async () => {
    expect((await operator('GET', '/operator/v1/models/thermo-2/firmware-legacy')).json).to.deep.equal({ model: 'thermo-2', until: null, passed: false });
    for (const bad of [{}, { until: '2027-01-01' }, { until: 'tomorrow' }, { until: 1 }, { until: '2027-13-01T00:00:00Z' }, { until: '2027-02-30T00:00:00Z' }, { until: '2027-01-01T24:00:00Z' }, { until: '2027-01-01T00:00:00Z\n' }, { until: '2027-01-01T00:00:00Z', extra: 1 }]) {
      expect((await operator('PUT', '/operator/v1/models/thermo-2/firmware-legacy', bad)).status, JSON.stringify(bad)).to.equal(400);
    }
    expect((await operator('PUT', '/operator/v1/models/no-such/firmware-legacy', { until: '2030-01-01T00:00:00Z' })).status).to.equal(404);
    const ahead = await operator('PUT', '/operator/v1/models/thermo-2/firmware-legacy', { until: '2099-01-01T00:00:00Z' });
    expect(ahead.json).to.deep.equal({ model: 'thermo-2', until: '2099-01-01T00:00:00.000Z', passed: false });
    const device = await makeDevice(server, 'SN-LEG3');
    await device.enroll({ keepFiles: true, firmware: { version: '0.9.0', digest: image(9) } });
    const passed = new Date(Date.now() - 1000).toISOString();
    const moved = await operator('PUT', '/operator/v1/models/thermo-2/firmware-legacy', { until: passed });
    expect(moved.status, moved.text).to.equal(200);
    expect(moved.json.passed).to.equal(true);
    const events = (await server.env.ctx.store.audit.recentByActions(['model.firmware-legacy-cutoff'], 5)).map((e) => JSON.parse(e.canonical).data);
    expect(events).to.deep.include({ model: 'thermo-2', until: new Date(passed).toISOString(), previous: '2099-01-01T00:00:00.000Z', principal: 'alice' });
    await refused(device, { firmware: { version: '0.9.0', digest: image(9) } }, 'badAttestationStatement', new RegExp(`check 5 \\(firmware\\).*legacy release 0\\.9\\.0 \\(unsigned\\), accepted only until the model's legacy cut-off ${new Date(passed).toISOString().replace(/\./g, '\\.')}`));
    await refused(device, {}, 'badAttestationStatement', /check 5 \(firmware\).*reports no firmware/);
    expect((await device.enroll({ keepFiles: true, firmware: { version: '1.0.0', digest: image(10) } })).certificate).to.be.ok;
    for (const [method, body] of [['PUT', { allowed: [] }], ['GET', undefined]] as const) {
      const answer = await operator(method, '/operator/v1/models/thermo-2/firmware', body);
      expect(answer.status, answer.text).to.equal(410);
      expect(answer.headers['content-type']).to.match(/^application\/problem\+json/);
      expect(answer.json).to.include({ type: 'urn:devid-ca:problem:gone', title: 'Gone', status: 410 });
      expect(answer.json.detail).to.match(/legacy cut-off/);
    }
    expect((await operator('PUT', '/operator/v1/models/thermo-2/firmware-legacy', { until: '2099-01-01T00:00:00Z' })).status).to.equal(409);
  });
});
