import { generateKeyPairSync } from 'node:crypto';
import { join } from 'node:path';
import { FlattenedSign } from 'jose';
import { expect } from 'chai';
import { AcmeError } from '../client/acme-client.ts';
import { certIdOf, Device } from '../client/device.ts';
import { fileFactoryKey } from '../client/factory-key.ts';
import { purgeAcmeState, ACME_STATE_KEPT_MS } from '../enroll/acme/housekeeping.ts';
import { rawConnection } from '../store/test-access.ts';
import { checkAnswersAgainstOpenapi, startTestServer, type TestServer } from './support/api.ts';
import { makeDevice, PUBLIC_HOST } from './support/acme-device.ts';
import { DATABASE_KINDS } from './support/databases.ts';

const TYPE = (name: string) => `urn:ietf:params:acme:error:${name}`;
const b64u = (text: string) => Buffer.from(text).toString('base64url');

for (const kind of DATABASE_KINDS) describe(`enrollment security (review findings, ${kind}): nobody suspends, forks or gets a certificate for a device they do not hold`, function () {
  this.timeout(240_000);
  checkAnswersAgainstOpenapi();
  let server: TestServer;
  let serial = 0;
  const next = () => `SN-S${++serial}`;
  before(async () => {
    server = await startTestServer(kind);
    const strict = await server.request('PUT', '/operator/v1/device-classes/strict', { token: server.tokens.operator, body: { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'suspend' } });
    expect(strict.status, strict.text).to.be.oneOf([200, 201]);
  });
  after(() => server.close());

  async function actions(device: string): Promise<string[]> {
    const history = await server.request('GET', `/audit/v1/devices/${device}/history`, { token: server.tokens.auditor });
    return history.json.events.map((e: { action: string }) => e.action);
  }
  const stateOf = async (device: string): Promise<string> => (await server.env.ctx.store.devices.get(device)).state;
  const certificateCount = () => server.env.ctx.store.certificates.count();
  async function strict(device: Device): Promise<void> {
    const moved = await server.request('PUT', `/operator/v1/devices/${device.serial}/class`, { token: server.tokens.operator, body: { class: 'strict' } });
    expect(moved.status, moved.text).to.equal(200);
  }
  async function refusedWith(promise: Promise<unknown>, type: string): Promise<AcmeError> {
    const err = await promise.catch((e: unknown) => e);
    expect(err, `expected ${type}`).to.be.instanceOf(AcmeError);
    expect((err as AcmeError).problem?.type, JSON.stringify((err as AcmeError).problem)).to.equal(TYPE(type));
    return err as AcmeError;
  }

  it("another device's certificate signed by a key that is not its key is refused with no clone signal, and suspends nobody", async () => {
    const victim = await makeDevice(server, next());
    const other = await makeDevice(server, next());
    await strict(victim);
    // The attacker knows the other device's public certificate, not its key: it signs with a random one.
    const attacker = new Device(victim.serial, victim.dir, await fileFactoryKey(join(victim.dir, 'factory-key.pem')), victim.acme, PUBLIC_HOST);
    const err = await refusedWith(attacker.enroll({ keepFiles: true, x5c: [Buffer.from(other.birthCertificate().rawData)] }), 'badAttestationStatement');
    expect(err.problem!.detail).to.match(/check 2 \(serial\)/);
    expect(await stateOf(victim.serial)).to.equal('manufactured');
    expect(await actions(victim.serial)).not.to.include('device.clone-suspected');
    expect(await actions(other.serial)).not.to.include('device.clone-suspected');
    // The victim enrolls as before.
    expect((await victim.enroll({ keepFiles: true })).certificate.subject).to.equal(`CN=${victim.serial}`);
  });

  it("another device's certificate with a valid signature by that device's key is a clone signal, and suspends under onCloneSignal: suspend", async () => {
    const original = await makeDevice(server, next());
    const copy = await makeDevice(server, next());
    await strict(copy);
    const holder = new Device(copy.serial, copy.dir, await fileFactoryKey(join(original.dir, 'factory-key.pem')), copy.acme, PUBLIC_HOST);
    await refusedWith(holder.enroll({ keepFiles: true, x5c: [Buffer.from(original.birthCertificate().rawData)] }), 'badAttestationStatement');
    expect(await actions(copy.serial)).to.include('device.clone-suspected');
    expect(await actions(original.serial)).to.include('device.clone-suspected');
    expect(await stateOf(copy.serial)).to.equal('suspended');
  });

  it('a newOrder naming a public certID (replaced, or of another device) is refused and writes no device event', async () => {
    const device = await makeDevice(server, next());
    const first = await device.enroll();
    await device.enroll();
    const other = await makeDevice(server, next());
    // Anyone: another account, no attestation; the certIDs are public (the CRL, the certificates themselves).
    const anyone = await makeDevice(server, next());
    await anyone.acme.init();
    await anyone.acme.newAccount();
    const before = [await actions(device.serial), await actions(other.serial)];
    await refusedWith(anyone.acme.post(anyone.acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: device.serial }], replaces: certIdOf(first.certificate) }), 'alreadyReplaced');
    await refusedWith(anyone.acme.post(anyone.acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: other.serial }], replaces: certIdOf(device.current()!) }), 'malformed');
    expect([await actions(device.serial), await actions(other.serial)]).to.deep.equal(before);
  });

  for (const [action, path, body] of [
    ['revoked', 'revoke', { reason: 'keyCompromise' }],
    ['suspended', 'suspend', {}],
    ['decommissioned', 'decommission', { reason: 'retired' }],
  ] as const) {
    it(`an order attested before the device is ${action} does not finalize after it`, async () => {
      const device = await makeDevice(server, next());
      await device.enroll();
      const before = await certificateCount();
      const err = await refusedWith(device.enroll({
        keepFiles: true,
        beforeFinalize: async () => {
          const answer = await server.request('POST', `/operator/v1/devices/${device.serial}/${path}`, { token: server.tokens.operator, ...(body ? { body } : {}) });
          expect(answer.status, answer.text).to.equal(200);
        },
      }), 'orderNotReady');
      expect(err.status).to.equal(403);
      expect(await certificateCount()).to.equal(before);
    });
  }

  it('an order attested before a reprovisioning does not finalize after it, and the new birth certificate is issued', async () => {
    const device = await makeDevice(server, next());
    await device.enroll();
    await refusedWith(device.enroll({
      keepFiles: true,
      beforeFinalize: async () => {
        const answer = await server.request('POST', `/operator/v1/devices/${device.serial}/reprovision`, { token: server.tokens.operator, body: { reason: 'RMA' } });
        expect(answer.status, answer.text).to.equal(200);
      },
    }), 'orderNotReady');
    expect(await stateOf(device.serial)).to.equal('manufactured');
    const refurbished = await makeDevice(server, device.serial).catch((e: unknown) => e);
    expect(refurbished, String(refurbished)).to.be.instanceOf(Device);
  });

  it('an order ready while its basis is revoked behind its back (no state change) is refused at finalize, in the issuance transaction', async () => {
    const device = await makeDevice(server, next());
    const before = await certificateCount();
    const birth = device.birthCertificate().serialNumber;
    const err = await refusedWith(device.enroll({
      keepFiles: true,
      // Straight in the store: no order invalidation runs, so finalize's own check must hold.
      beforeFinalize: async () => void (await server.env.ctx.store.certificates.revoke(birth, 1, new Date())),
    }), 'unauthorized');
    expect(err.problem!.detail).to.match(/revoked/);
    expect(await certificateCount()).to.equal(before);
  });

  it('one operational key for two devices: of two orders attested with one key, only the first to finalize gets a certificate', async () => {
    const a = await makeDevice(server, next());
    const b = await makeDevice(server, next());
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    let second: Promise<unknown> | undefined;
    const err = await refusedWith(a.enroll({
      keepFiles: true, newKey: key,
      beforeFinalize: async () => {
        second = b.enroll({ keepFiles: true, newKey: key });
        await second;
      },
    }), 'badCSR');
    expect(err.problem!.detail).to.match(/already certified/);
    await second;
    expect(await server.env.ctx.store.certificates.devicesWithKey(
      (await import('../ca/digest.ts')).sha256Hex(Buffer.from((await import('node:crypto')).createPublicKey(key).export({ format: 'der', type: 'spki' }))),
    )).to.deep.equal([b.serial]);
  });

  it('keyChange with an inner protected header or payload of JSON null is malformed (400), not a 500', async () => {
    const device = await makeDevice(server, next());
    await device.acme.init();
    const accountUrl = await device.acme.newAccount();
    const url = device.acme.directory.keyChange;
    const nullHeader = { protected: b64u('null'), payload: b64u('{}'), signature: 'AAAA' };
    const err1 = await refusedWith(device.acme.post(url, nullHeader), 'malformed');
    expect(err1.status).to.equal(400);
    const newKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const jwk = await (await import('jose')).exportJWK(newKey);
    delete jwk.d;
    const inner = await new FlattenedSign(new TextEncoder().encode('null')).setProtectedHeader({ alg: 'ES256', jwk, url }).sign(newKey);
    const err2 = await refusedWith(device.acme.post(url, inner), 'malformed');
    expect(err2.status).to.equal(400);
    expect(accountUrl).to.be.a('string');
  });

  it('batch revocation refuses a name that is no batch identifier (400), and writes nothing', async () => {
    for (const name of ['a_b', 'x'.repeat(65), '-a']) {
      const answer = await server.request('POST', `/operator/v1/batches/${name}/revoke`, { token: server.tokens.operator, body: { reason: 'keyCompromise' } });
      expect(answer.status, `${name}: ${answer.text}`).to.equal(400);
      expect(answer.headers['content-type']).to.match(/problem\+json/);
    }
    expect(await server.env.ctx.store.batches.isCompromised('a_b')).to.equal(false);
  });
});

describe('unauthenticated ACME growth is bounded: minimal JWKs, no audit event per anonymous account, quotas, 429, housekeeping', function () {
  this.timeout(180_000);
  let server: TestServer;
  before(async () => {
    // 1 per second, a burst of 10: the limit is reached quickly.
    server = await startTestServer('pglite', { DEVID_ACME_ANONYMOUS_RATE: '1' });
  });
  after(() => server.close());

  it('newAccount keeps only the JWK members of its key type and records no audit event until a device attests through it', async () => {
    const db = rawConnection(server.env.ctx.store);
    const auditRows = async () => Number((await db.raw('select (select count(*) from audit_events) + (select count(*) from audit_pending) as n')).rows[0].n);
    const device = await makeDevice(server, 'SN-G1');
    await device.acme.init();
    const auditBefore = await auditRows();
    const jwk = { ...(await device.acme.jwk()), padding: 'x'.repeat(40_000) };
    const answer = await device.acme.post(device.acme.directory.newAccount, { termsOfServiceAgreed: true }, { header: { jwk } });
    expect(answer.status).to.equal(201);
    device.acme.accountUrl = answer.headers.location as string;
    const id = device.acme.accountUrl.split('/').at(-1)!;
    const account = await server.env.ctx.store.acme.account(id);
    expect(Object.keys(account!.jwk).sort()).to.deep.equal(['crv', 'kty', 'x', 'y']);
    expect(account!.recorded).to.equal(false);
    expect(await auditRows()).to.equal(auditBefore);
    await device.enroll();
    expect((await server.env.ctx.store.acme.account(id))!.recorded).to.equal(true);
    for (let i = 0; i < 50 && (await server.env.ctx.store.audit.anyPending()); i += 1) await new Promise((resolve) => setTimeout(resolve, 100));
    const created = (await server.env.ctx.store.audit.recentByActions(['acme.account-created'], 100)).map((e) => JSON.parse(e.canonical) as { data: { account: string } });
    expect(created.map((e) => e.data.account)).to.include(id);
  });

  it('new nonces and accounts from one address beyond its budget get 429 rateLimited with Retry-After', async () => {
    const device = await makeDevice(server, 'SN-G2');
    await device.acme.init();
    let limited: Awaited<ReturnType<typeof device.acme.get>> | undefined;
    for (let i = 0; i < 30 && !limited; i += 1) {
      const answer = await device.acme.get(device.acme.directory.newNonce);
      if (answer.status === 429) limited = answer;
      else expect(answer.status).to.equal(204);
    }
    expect(limited, 'no 429 within 30 nonces').not.to.equal(undefined);
    expect(limited!.json.type).to.equal(TYPE('rateLimited'));
    expect(Number(limited!.headers['retry-after'])).to.be.greaterThan(0);
    expect(limited!.headers['replay-nonce']).to.equal(undefined);
  });

  it('an account may hold 16 live orders; the 17th is 429', async () => {
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const device = await makeDevice(server, 'SN-G3');
    await device.acme.init();
    await device.acme.newAccount();
    for (let i = 0; i < 16; i += 1) {
      await device.acme.post(device.acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: device.serial }] });
    }
    const err = await device.acme.post(device.acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: device.serial }] }).catch((e: unknown) => e);
    expect((err as AcmeError).status).to.equal(429);
    expect((err as AcmeError).problem!.type).to.equal(TYPE('rateLimited'));
  });

  it('housekeeping deletes expired nonces, ended orders without certificate and unused accounts a day old, and keeps the rest', async () => {
    const db = rawConnection(server.env.ctx.store);
    const store = server.env.ctx.store;
    const accounts = async () => Number((await db.raw('select count(*)::int as n from acme_accounts')).rows[0].n);
    const orders = async () => Number((await db.raw('select count(*)::int as n from acme_orders')).rows[0].n);
    const [accountsBefore, ordersBefore] = [await accounts(), await orders()];
    expect(ordersBefore).to.be.greaterThan(16);
    const later = new Date(Date.now() + 2 * 3600 * 1000 + ACME_STATE_KEPT_MS);
    const purged = await purgeAcmeState(store, later);
    expect(purged.orders).to.be.greaterThan(15);
    expect(await orders()).to.be.lessThan(ordersBefore);
    // The enrolled device's order and its recorded account stay.
    const valid = Number((await db.raw(`select count(*)::int as n from acme_orders where status = 'valid'`)).rows[0].n);
    expect(valid).to.be.greaterThan(0);
    expect(Number((await db.raw('select count(*)::int as n from acme_accounts where recorded')).rows[0].n)).to.be.greaterThan(0);
    expect(await accounts()).to.be.lessThan(accountsBefore);
    expect(Number((await db.raw('select count(*)::int as n from acme_nonces where expires_at <= ?', [later])).rows[0].n)).to.equal(0);
  });
});
