import { generateKeyPairSync, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { AcmeError } from '../client/acme-client.ts';
import { join } from 'node:path';
import { certIdOf, Device } from '../client/device.ts';
import { fileFactoryKey } from '../client/factory-key.ts';
import { rawConnection } from '../store/test-access.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { makeDevice, PUBLIC_HOST, refused } from './support/acme-device.ts';
import { DATABASE_KINDS } from './support/databases.ts';

const TYPE = (name: string) => `urn:ietf:params:acme:error:${name}`;

for (const kind of DATABASE_KINDS) describe(`ACME refusals on ${kind}: each with its problem type, nothing written it should not, clone signals in the history`, function () {
  this.timeout(180_000);
  let server: TestServer;
  let serial = 0;
  const next = () => `SN-R${++serial}`;
  before(async () => {
    server = await startTestServer(kind);
  });
  after(() => server.close());


  async function actions(device: string): Promise<string[]> {
    const history = await server.request('GET', `/audit/v1/devices/${device}/history`, { token: server.tokens.auditor });
    return history.json.events.map((e: { action: string }) => e.action);
  }

  async function certificateCount(): Promise<number> {
    return server.env.ctx.store.certificates.count();
  }

  it('refuses a tampered signature, a wrong rpIdHash and a wrong credId (check 3), writing no certificate', async () => {
    const device = await makeDevice(server, next());
    const before = await certificateCount();
    await refused(device, { attestation: { signature: (sig) => Buffer.concat([sig.subarray(0, sig.length - 1), Buffer.from([sig[sig.length - 1]! ^ 1])]) } }, 'badAttestationStatement', /check 3 \(sig\)/);
    await refused(device, { attestation: { rpIdHash: Buffer.alloc(32, 7) } }, 'badAttestationStatement', /check 3 \(rpIdHash\)/);
    await refused(device, { attestation: { credId: Buffer.alloc(32, 9) } }, 'badAttestationStatement', /check 3 \(credId\)/);
    expect(await certificateCount()).to.equal(before);
    expect(await actions(device.serial)).not.to.include('device.clone-suspected');
    // The refusals left the device able to enroll.
    expect((await device.enroll({ keepFiles: true })).certificate.subject).to.equal(`CN=${device.serial}`);
  });

  it('a signCount that does not increase is refused as a suspected clone, in the device history', async () => {
    const device = await makeDevice(server, next());
    await device.enroll({ signCount: 10 });
    await refused(device, { signCount: 10 }, 'badAttestationStatement', /check 4 \(signCount\)/);
    await refused(device, { signCount: 3 }, 'badAttestationStatement', /check 4/);
    expect(await actions(device.serial)).to.include('device.clone-suspected');
    expect((await device.enroll({ signCount: 11, keepFiles: true })).certificate).to.be.ok;
  });

  it("an operator's counter reset (a TPM cleared) lets a counter that went back attest again, audited with its reason; only operators, only known devices", async () => {
    const device = await makeDevice(server, next());
    await device.enroll({ signCount: 50 });
    await refused(device, { signCount: 2 }, 'badAttestationStatement', /check 4/);
    const path = `/operator/v1/devices/${device.serial}/counter-reset`;
    expect((await server.request('POST', path, { token: server.tokens.auditor, body: { reason: 'x' } })).status).to.equal(403);
    expect((await server.request('POST', path, { token: server.tokens.operator, body: {} })).status).to.equal(400);
    expect((await server.request('POST', '/operator/v1/devices/SN-NOBODY/counter-reset', { token: server.tokens.operator, body: { reason: 'x' } })).status).to.equal(404);
    const reset = await server.request('POST', path, { token: server.tokens.operator, body: { reason: 'TPM cleared at the repair shop' } });
    expect([reset.status, reset.json]).to.deep.equal([200, { serial: device.serial, signCount: 0, previous: 50 }]);
    expect((await device.enroll({ signCount: 2, keepFiles: true })).certificate).to.be.ok;
    const history = await server.request('GET', `/audit/v1/devices/${device.serial}/history`, { token: server.tokens.auditor });
    const event = history.json.events.find((e: { action: string }) => e.action === 'device.counter-reset');
    expect(event?.data).to.deep.equal({ reason: 'TPM cleared at the repair shop', previous: 50 });
  });

  it("another serial's birth certificate, signed by its key, is a clone signal in both devices' histories (check 2); without its key, a plain refusal", async () => {
    const a = await makeDevice(server, next());
    const b = await makeDevice(server, next());
    await refused(b, { x5c: [Buffer.from(a.birthCertificate().rawData)] }, 'badAttestationStatement', /check 2 \(serial\)/);
    expect(await actions(a.serial)).not.to.include('device.clone-suspected');
    const holder = new Device(b.serial, b.dir, await fileFactoryKey(join(a.dir, 'factory-key.pem')), b.acme, PUBLIC_HOST);
    await refused(holder, { x5c: [Buffer.from(a.birthCertificate().rawData)] }, 'badAttestationStatement', /check 2 \(serial\)/);
    expect(await actions(a.serial)).to.include('device.clone-suspected');
    expect(await actions(b.serial)).to.include('device.clone-suspected');
  });

  it('an unknown birth certificate, or one from another CA, is refused (check 1); a revoked one too, before the order or during it', async () => {
    const device = await makeDevice(server, next());
    const keys = (await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, ['sign', 'verify'])) as CryptoKeyPair;
    const foreign = await x509.X509CertificateGenerator.createSelfSigned({ name: `CN=${device.serial}`, keys, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' } });
    await refused(device, { x5c: [Buffer.from(foreign.rawData)] }, 'badAttestationStatement', /check 1/);
    const birth = device.birthCertificate().serialNumber;
    await refused(device, { beforeAttestation: async () => void (await server.env.ctx.store.certificates.revoke(birth, 1, new Date())) }, 'badAttestationStatement', /check 1 .*revoked/);
    await refused(device, {}, 'rejectedIdentifier', /no live birth certificate/);
  });

  it('a CSR for another key than the attested one is badCSR and the order becomes invalid; the birth key cannot be the new key', async () => {
    const device = await makeDevice(server, next());
    const before = await certificateCount();
    const err = await refused(device, { csrKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey }, 'badCSR', /attested/);
    expect(err.status).to.equal(400);
    const orders = await server.env.ctx.store.acme.ordersOfAccount(device.acme.accountUrl!.split('/').at(-1)!);
    expect(orders.at(-1)!.status).to.equal('invalid');
    const factoryKey = (await import('node:crypto')).createPrivateKey((await import('node:fs')).readFileSync(`${device.dir}/factory-key.pem`));
    await refused(device, { newKey: factoryKey }, 'badAttestationStatement', /certified for this device before/);
    expect(await certificateCount()).to.equal(before);
  });

  it('a second replaces of one certificate is alreadyReplaced (409), a lineage fork once the device has attested; replaces naming another device\'s certificate is refused', async () => {
    const device = await makeDevice(server, next());
    const first = await device.enroll({ keepFiles: true });
    await device.enroll({ replaces: certIdOf(first.certificate) });
    const err = await refused(device, { replaces: certIdOf(first.certificate) }, 'alreadyReplaced');
    expect(err.status).to.equal(409);
    // An order proves nothing: refused at newOrder, it is no fork in the history.
    expect(await actions(device.serial)).not.to.include('device.lineage-fork');
    // A successor issued between this order and its attestation: the device proved itself, so this is a fork.
    const current = certIdOf(device.current()!);
    await refused(device, { replaces: current, beforeAttestation: async () => void (await device.enroll({ keepFiles: true, replaces: current })) }, 'alreadyReplaced');
    expect(await actions(device.serial)).to.include('device.lineage-fork');
    const other = await makeDevice(server, next());
    // The order alone proves nothing: refused, no event in either history.
    await refused(other, { replaces: certIdOf(device.current()!) }, 'malformed', /another device/);
    expect(await actions(other.serial)).not.to.include('device.clone-suspected');
  });

  it('two orders racing to replace one certificate: exactly one gets a certificate, the other alreadyReplaced; an unattested claim blocks nobody', async () => {
    const device = await makeDevice(server, next());
    const first = await device.enroll();
    // An order that names the certificate but never attests (another account) does not block the device.
    const intruder = await makeDevice(server, next());
    await intruder.acme.init();
    await intruder.acme.newAccount();
    await intruder.acme.post(intruder.acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: device.serial }], replaces: certIdOf(first.certificate) });
    // replaces named explicitly: the race is the server's to settle, without the client's lost-answer recovery.
    const replaces = certIdOf(first.certificate);
    const results = await Promise.allSettled([device.enroll({ keepFiles: true, signCount: 100, replaces }), device.enroll({ keepFiles: true, signCount: 101, replaces })]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).to.have.length(1);
    expect(lost).to.have.length(1);
    expect((lost[0]!.reason as AcmeError).problem!.type).to.equal(TYPE('alreadyReplaced'));
  });

  it('JWS refusals: a replayed nonce, a wrong url, alg none and HS256, both jwk and kid', async () => {
    const device = await makeDevice(server, next());
    await device.acme.init();
    await device.acme.newAccount();
    const { acme } = device;
    const url = acme.directory.newOrder;
    const body = { identifiers: [{ type: 'permanent-identifier', value: device.serial }] };
    const before = await certificateCount();
    const events = await server.env.ctx.store.audit.count();
    const send = async (jws: string, target = url) => acme.send('POST', target, jws);
    const signed = await acme.sign(url, body);
    expect((await send(signed)).status).to.equal(201);
    const replayed = await send(signed);
    expect([replayed.status, replayed.json.type]).to.deep.equal([400, TYPE('badNonce')]);
    expect(replayed.headers['replay-nonce']).to.be.a('string');
    const wrongUrl = await send(await acme.sign(`${url}x`, body));
    expect([wrongUrl.status, wrongUrl.json.type]).to.deep.equal([403, TYPE('unauthorized')]);
    for (const alg of ['none', 'HS256']) {
      const jws = JSON.parse(await acme.sign(url, body));
      const header = JSON.parse(Buffer.from(jws.protected, 'base64url').toString());
      jws.protected = Buffer.from(JSON.stringify({ ...header, alg })).toString('base64url');
      if (alg === 'none') jws.signature = '';
      const answer = await send(JSON.stringify(jws));
      expect([answer.status, answer.json.type], alg).to.deep.equal([400, TYPE('badSignatureAlgorithm')]);
      expect(answer.json.algorithms).to.deep.equal(['ES256', 'ES384', 'EdDSA', 'RS256']);
    }
    const both = await send(await acme.sign(url, body, { header: { jwk: await acme.jwk() } }));
    expect([both.status, both.json.type]).to.deep.equal([400, TYPE('malformed')]);
    const wrongType = await acme.send('POST', url, await acme.sign(url, body), 'application/json');
    expect(wrongType.status).to.equal(415);
    for (const answer of [replayed, wrongUrl, both, wrongType]) {
      expect(answer.headers['content-type']).to.contain('application/problem+json');
      expect(answer.headers.link).to.contain('rel="index"');
    }
    expect(await certificateCount()).to.equal(before);
    expect(await server.env.ctx.store.audit.count()).to.equal(events);
  });

  it('a device class with onCloneSignal suspend suspends the device on a clone signal', async () => {
    const device = await makeDevice(server, next());
    await device.enroll({ signCount: 5 });
    const { store } = server.env.ctx;
    await store.deviceClasses.put({ name: 'strict', ttlSeconds: 3600, stagedRenewal: false, factoryReattestEverySeconds: 86400, serverAuth: false, counterRequired: true, onCloneSignal: 'suspend', attestationFormats: ['devid'], est: false, onWithdrawnFirmware: 'refuse' }, new Date());
    await rawConnection(store)('devices').where({ serial: device.serial }).update({ device_class: 'strict' });
    await refused(device, { signCount: 5 }, 'badAttestationStatement', /check 4/);
    expect((await store.devices.find(device.serial))!.state).to.equal('suspended');
    expect(await actions(device.serial)).to.include.members(['device.clone-suspected', 'device.suspended']);
    await refused(device, { signCount: 6 }, 'rejectedIdentifier', /suspended/);
  });
});
