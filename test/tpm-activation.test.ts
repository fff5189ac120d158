import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { createToken } from '../server/tokens.ts';
import { AcmeClient, AcmeError } from '../client/acme-client.ts';
import { Device } from '../client/device.ts';
import type { FactoryKey } from '../client/factory-key.ts';
import { directoryUrl, PUBLIC_HOST, toLoopback } from './support/acme-device.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { opensslVerify } from './support/openssl.ts';
import { AK_ATTRIBUTES, SoftwareTpm, softwareTpmOrSkip, tpmCsr } from './support/swtpm.ts';
import { testTpmMaker } from './support/tpm-maker.ts';

describe('TPM credential activation before a birth certificate: the attestation key is proven to live in the certified TPM (swtpm, tpm2-tools)', function () {
  this.timeout(180_000);
  let tpm: SoftwareTpm;
  let server: TestServer;
  let ek: number;
  let ekDer: Buffer;
  let serial = 0;
  const factory = (path: string, body: unknown) => server.request('POST', path, { token: server.tokens.factory, body });

  before(async function () {
    tpm = await softwareTpmOrSkip(this);
    server = await startTestServer('pglite');
    ek = tpm.createEndorsementKey();
    const maker = await testTpmMaker(tpm.publicKeyDer(ek));
    ekDer = maker.ekDer;
    const bob = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token;
    for (const [id, pem] of [['tpm-maker', maker.rootPem], ['other-maker', maker.otherRootPem]] as const) {
      const proposed = await server.request('PUT', `/operator/v1/manufacturers/${id}`, { token: server.tokens.operator, body: { certificates: [pem], models: ['thermo-2'], crl: null } });
      expect(proposed.status, proposed.text).to.equal(201);
      const approved = await server.request('POST', `/operator/v1/manufacturers/${id}/approve`, { token: bob, body: { proposal: proposed.json.pending.sha256 } });
      expect(approved.status, approved.text).to.equal(200);
    }
  });
  after(async () => {
    await server?.close();
    tpm?.stop();
  });

  function challengeBody(name: string, ak: number, overrides: Record<string, unknown> = {}) {
    return { serial: name, model: 'thermo-2', manufacturer: 'tpm-maker', ekCertificate: ekDer.toString('base64'), akPublic: tpm.publicArea(ak).toString('base64'), ...overrides };
  }

  function birthBody(name: string, ak: number, tpmActivation?: unknown) {
    const csr = tpmCsr(name, tpm.publicKeyDer(ak), (tbs) => tpm.hashAndSign(ak, tbs));
    return { serial: name, model: 'thermo-2', batch: 'b1', csr: csr.toString('base64url'), ...(tpmActivation ? { tpmActivation } : {}) };
  }

  it('the TPM recovers the credential, and the birth certificate is issued with the endorsement recorded in the audit event', async () => {
    const name = `SN-EK${++serial}`;
    const ak = tpm.createKey('ecc:ecdsa-sha256:null', AK_ATTRIBUTES);
    const challenge = await factory('/factory/v1/tpm-challenges', challengeBody(name, ak));
    expect(challenge.status, challenge.text).to.equal(201);
    const credential = tpm.activateCredential(ak, ek, Buffer.from(challenge.json.credentialBlob, 'base64'), Buffer.from(challenge.json.encryptedSecret, 'base64'));
    expect(credential).to.have.length(32);
    const birth = await factory('/factory/v1/birth-certificates', birthBody(name, ak, { id: challenge.json.id, credential: credential.toString('base64') }));
    expect(birth.status, birth.text).to.equal(201);
    const verified = opensslVerify(server.rootPem, birth.json.chain, birth.json.certificate);
    expect(verified.ok, verified.output).to.equal(true);
    const history = await server.request('GET', `/audit/v1/devices/${name}/history`, { token: server.tokens.auditor });
    const born = history.json.events.find((e: { action: string }) => e.action === 'device.manufactured');
    expect(born.data.tpm).to.include({ challenge: challenge.json.id, manufacturer: 'tpm-maker', akName: tpm.name(ak).toString('hex') });
    // Its birth key lives in a TPM: even a class that accepts devid refuses devid from it (the restricted AK could sign devid's data through TPM2_Hash).
    const put = await server.request('PUT', '/operator/v1/device-classes/both', { token: server.tokens.operator, body: { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: false, onCloneSignal: 'refuse', attestationFormats: ['devid', 'tpm'] } });
    expect(put.status, put.text).to.equal(201);
    expect((await server.request('PUT', `/operator/v1/devices/${name}/class`, { token: server.tokens.operator, body: { class: 'both' } })).status).to.equal(200);
    const dir = mkdtempSync(join(tmpdir(), 'devid-test-tpm-born-'));
    writeFileSync(join(dir, 'birth.pem'), birth.json.certificate);
    const akKey: FactoryKey = {
      spki: tpm.publicKeyDer(ak), coseAlg: -7, sign: async (data) => tpm.hashAndSign(ak, data), csr: async () => '', close: async () => {},
    };
    const asDevid = new Device(name, dir, akKey, new AcmeClient(directoryUrl(server), Device.accountKey(dir), server.rootPem, toLoopback), PUBLIC_HOST);
    const refusedDevid = await asDevid.enroll({ keepFiles: true }).catch((e: unknown) => e);
    expect(refusedDevid).to.be.instanceOf(AcmeError);
    expect((refusedDevid as AcmeError).problem!.detail).to.match(/format: .*proven to live in a TPM.*tpm only, not devid/);
    // Redeemed once: a second birth with the same proof (another serial's retry cannot reuse it either).
    const again = await factory('/factory/v1/birth-certificates', birthBody(`SN-EK${++serial}`, ak, { id: challenge.json.id, credential: credential.toString('base64') }));
    expect(again.status).to.be.oneOf([403, 409]);
  });

  it('refuses a wrong credential, another key in the CSR, another device, and an AK that could leave its TPM or is not restricted', async () => {
    const name = `SN-EK${++serial}`;
    const ak = tpm.createKey('ecc:ecdsa-sha256:null', AK_ATTRIBUTES);
    const challenge = await factory('/factory/v1/tpm-challenges', challengeBody(name, ak));
    expect(challenge.status, challenge.text).to.equal(201);
    const wrong = await factory('/factory/v1/birth-certificates', birthBody(name, ak, { id: challenge.json.id, credential: Buffer.alloc(32, 7).toString('base64') }));
    expect([wrong.status, wrong.json.detail]).to.deep.include(403);
    expect(wrong.json.detail).to.match(/not proven to live there/);
    const credential = tpm.activateCredential(ak, ek, Buffer.from(challenge.json.credentialBlob, 'base64'), Buffer.from(challenge.json.encryptedSecret, 'base64'));
    const otherKey = tpm.createKey('ecc:ecdsa-sha256:null', AK_ATTRIBUTES);
    const swapped = await factory('/factory/v1/birth-certificates', birthBody(name, otherKey, { id: challenge.json.id, credential: credential.toString('base64') }));
    expect([swapped.status, swapped.json.detail]).to.deep.equal([403, 'the CSR key is not the attestation key the TPM challenge was made for']);
    const elsewhere = await factory('/factory/v1/birth-certificates', birthBody(`SN-EK${++serial}`, ak, { id: challenge.json.id, credential: credential.toString('base64') }));
    expect(elsewhere.status).to.equal(403);
    // The AK of another TPM object cannot recover this credential: the TPM refuses, so the line has nothing to send.
    expect(() => tpm.activateCredential(otherKey, ek, Buffer.from(challenge.json.credentialBlob, 'base64'), Buffer.from(challenge.json.encryptedSecret, 'base64'))).to.throw();
    const duplicable = tpm.createKey('ecc:ecdsa-sha256:null', 'userwithauth|restricted|sign|sensitivedataorigin');
    const refused = await factory('/factory/v1/tpm-challenges', challengeBody(`SN-EK${++serial}`, duplicable));
    expect([refused.status, refused.json.detail]).to.deep.equal([400, 'akPublic is not an attestation key that stays in its TPM: it lacks fixedTPM, fixedParent']);
    const unrestricted = tpm.createKey('ecc:ecdsa-sha256:null', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign');
    expect((await factory('/factory/v1/tpm-challenges', challengeBody(`SN-EK${++serial}`, unrestricted))).json.detail).to.match(/lacks restricted/);
  });

  it('refuses an EK certificate of another maker, an unknown maker, garbage, and keeps the birth without activation working', async () => {
    const name = `SN-EK${++serial}`;
    const ak = tpm.createKey('ecc:ecdsa-sha256:null', AK_ATTRIBUTES);
    const otherMaker = await factory('/factory/v1/tpm-challenges', challengeBody(name, ak, { manufacturer: 'other-maker' }));
    expect([otherMaker.status, otherMaker.json.detail]).to.deep.equal([400, 'ekCertificate: the EK certificate was not issued by any certificate of a registered manufacturer']);
    expect((await factory('/factory/v1/tpm-challenges', challengeBody(name, ak, { manufacturer: 'nobody' }))).status).to.equal(400);
    for (const junk of [{ ekCertificate: 'AAAA' }, { akPublic: 'AAAA' }, { ekCertificate: 42 }, { akPublic: Buffer.alloc(5000).toString('base64') }, { serial: '../x' }]) {
      const answer = await factory('/factory/v1/tpm-challenges', challengeBody(name, ak, junk));
      expect(answer.status, JSON.stringify(junk)).to.equal(400);
    }
    for (const proof of [{ id: 'x', credential: 'AAAA' }, { id: 'A'.repeat(22) }, 'text', { id: 'A'.repeat(22), credential: 'AAAA', extra: 1 }]) {
      const answer = await factory('/factory/v1/birth-certificates', birthBody(name, ak, proof));
      expect(answer.status, JSON.stringify(proof)).to.equal(400);
    }
    expect((await factory('/factory/v1/birth-certificates', birthBody(name, ak, { id: 'A'.repeat(22), credential: 'AAAA' }))).status).to.equal(404);
    expect((await factory('/factory/v1/birth-certificates', birthBody(name, ak))).status).to.equal(201);
  });
});
