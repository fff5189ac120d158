import { generateKeyPairSync } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import pkcs11js from 'pkcs11js';
import { HierarchyError, loadHierarchy } from '../ca/hierarchy.ts';
import { IssuanceService } from '../ca/issuance.ts';
import type { Issuer } from '../ca/issuer.ts';
import { OfflineKeyError } from '../ca/issuer.ts';
import { ProfileLintError } from '../ca/lint.ts';
import { HOUR_MS, birthProfile, operationalProfile } from '../ca/profiles.ts';
import { HsmError } from '../hsm/errors.ts';
import { acquireModule, releaseModule } from '../hsm/pkcs11-module.ts';
import { Pkcs11KeyProvider, findTokenSlot } from '../hsm/pkcs11-provider.ts';
import { hsmCrypto } from '../hsm/webcrypto.ts';
import { deviceHistory } from '../registry/reports/device-history.ts';
import { initialise, rolloverOperationalCa } from '../server/ceremonies.ts';
import { serve } from '../server/serve.ts';
import { createTestEnvironment, type TestEnvironment } from './support/context.ts';
import { opensslVerify } from './support/openssl.ts';
import { createTestToken, MODULE_PATH } from './support/softhsm.ts';

const BASE = 'http://pki.devid.test';

/** A key pair made with raw pkcs11js, with the label and CKA_ID we choose: what an operator's mistake or an attacker could leave in a token. */
async function rawKey(tokenLabel: string, label: string, id: Buffer, pin?: string): Promise<void> {
  const lib = acquireModule(MODULE_PATH);
  try {
    const session = lib.C_OpenSession((await findTokenSlot(lib, tokenLabel))!, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    if (pin) lib.C_Login(session, pkcs11js.CKU_USER, pin);
    const common = [{ type: pkcs11js.CKA_LABEL, value: label }, { type: pkcs11js.CKA_ID, value: id }, { type: pkcs11js.CKA_TOKEN, value: true }];
    lib.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
      [...common, { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from('06052b81040022', 'hex') }],
      [...common, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SIGN, value: true }]);
    lib.C_CloseSession(session);
  } finally {
    releaseModule(MODULE_PATH);
  }
}

describe('hierarchy in SoftHSM: keys found by CKA_ID, ceremonies that clean up after themselves', function () {
  this.timeout(120_000);
  let env: TestEnvironment;

  beforeEach(async () => {
    env = await createTestEnvironment('pglite');
  });
  afterEach(() => env.cleanup());

  const spki = () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
  const issueOperational = (issuer: Issuer, serial: string) => {
    const profile = operationalProfile({ issuer, spki: spki(), baseUrl: BASE, now: new Date() }, { serial, trustDomain: 'd.example', ttlMs: HOUR_MS, serverAuth: false, predecessorSha256: Buffer.alloc(32, serial.length) });
    return env.ctx.store.transaction((tx) => new IssuanceService(env.ctx.clock).issue(tx, { issuer, profile, deviceSerial: null, predecessorSha256: null }));
  };

  it('a rollover of the operational intermediate: certificates before and after are told apart, and both still verify', async () => {
    const { ctx } = env;
    const { hierarchy } = await initialise(ctx);
    const before = await issueOperational(hierarchy.operational, 'SN-OLD');

    const { previous, next } = await rolloverOperationalCa(ctx, 'cli');
    expect([previous.slug, next.slug]).to.deep.equal(['operational', 'operational-2']);
    expect(next.record.keyLabel).to.equal('devid-operational-2');
    const reloaded = await loadHierarchy(ctx.provider, ctx.crypto, ctx.store);
    expect(reloaded.operational.id).to.equal(next.id);
    const retired = reloaded.byId(previous.id)!;
    expect(retired.record.active).to.equal(false);
    expect(retired.online, 'the retired intermediate keeps its key for its CRL and OCSP').to.equal(true);
    const after = await issueOperational(reloaded.operational, 'SN-NEW');

    expect(before.record.issuerId).to.equal(previous.id);
    expect(after.record.issuerId).to.equal(next.id);
    const aki = (der: Buffer) => new x509.X509Certificate(new Uint8Array(der)).getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId;
    expect(aki(before.der)).to.equal(previous.record.ski.toString('hex'));
    expect(aki(after.der)).to.equal(next.record.ski.toString('hex'));
    const root = reloaded.root.certificate.toString('pem');
    const pem = (issuer: Issuer) => issuer.certificate.toString('pem');
    expect(opensslVerify(root, pem(retired), before.pem, 'sslclient').ok).to.equal(true);
    expect(opensslVerify(root, pem(reloaded.operational), after.pem, 'sslclient').ok).to.equal(true);
    expect(opensslVerify(root, pem(reloaded.operational), before.pem).ok, 'the old certificate does not chain to the new intermediate').to.equal(false);
    expect(new x509.X509Certificate(new Uint8Array(after.der)).toString('text')).to.contain(`${BASE}/ca/operational-2.crt`);
    const byRetired = await issueOperational(retired, 'SN-RETIRED').catch((e: unknown) => e);
    expect(byRetired).to.be.instanceOf(ProfileLintError);
    expect(String(byRetired)).to.contain('retired');

    const rows = await ctx.store.caCertificates.all();
    expect(rows.filter((r) => r.role === 'operational').map((r) => [r.generation, r.active])).to.deep.equal([[1, false], [2, true]]);
    const event = (await ctx.store.audit.page(0, 1000)).map((e) => JSON.parse(e.canonical)).find((e) => e.action === 'ca.rolled-over');
    expect(event.data.next.keyLabel).to.equal('devid-operational-2');
  });

  it('the device history names each certificate\'s issuing CA', async () => {
    const { ctx } = env;
    const { hierarchy } = await initialise(ctx);
    const issue = (issuer: Issuer) => ctx.store.transaction((tx) => new IssuanceService(ctx.clock).issue(tx, {
      issuer, profile: birthProfile({ issuer, spki: spki(), baseUrl: BASE, now: new Date() }, { serial: 'SN-H', manufacturer: 'A', model: 'm', hwType: '1.2.3' }), deviceSerial: 'SN-H', predecessorSha256: null,
    }));
    await ctx.store.devices.insert({ serial: 'SN-H', model: 'm', batch: 'b', line: 'l', deviceClass: null, owner: null, state: 'manufactured', manufacturer: 'self', factoryKeySha256: 'k', reprovisionAllowed: false, signCount: 0, factoryAttestedAt: null, createdAt: new Date(), updatedAt: new Date() });
    await issue(hierarchy.factory);
    const history = (await deviceHistory(ctx.store, 'SN-H'))!;
    expect(history.certificates[0]).to.include({ issuer: 'factory', issuerSerial: hierarchy.factory.record.serial });
  });

  it('a rollover whose transaction fails removes only the key it made; a rollover needs the root online', async () => {
    const { ctx } = env;
    await initialise(ctx);
    // The events are written inside the action's transaction: a failure there must undo the whole action.
    const auditLog = ctx.audit as unknown as { pending: unknown };
    const pending = auditLog.pending;
    auditLog.pending = () => {
      throw new Error('disk full');
    };
    try {
      expect(String(await rolloverOperationalCa(ctx, 'cli').catch((e: unknown) => e))).to.contain('disk full');
    } finally {
      auditLog.pending = pending;
    }
    expect(await ctx.provider.findKey('devid-operational-2')).to.equal(undefined);
    for (const label of ['devid-root', 'devid-factory', 'devid-operational', 'devid-audit']) expect(await ctx.provider.findKey(label), label).to.not.equal(undefined);
    expect((await ctx.store.caCertificates.all()).length).to.equal(4);

    await ctx.provider.destroyKey((await ctx.provider.findKey('devid-root'))!);
    const offline = await rolloverOperationalCa(ctx, 'cli').catch((e: unknown) => e);
    expect(offline).to.be.instanceOf(HierarchyError);
    expect(String(offline)).to.contain('root ceremony');
    expect(await ctx.provider.findKey('devid-operational-2')).to.equal(undefined);
  });

  it('an init that fails half-way removes the keys it made and no others, so that init can run again', async () => {
    const { ctx } = env;
    // Another hierarchy's key on the same token, with a CA-like label: init must leave it alone.
    const foreign = await ctx.provider.createKey('devid-operational-7', 'P-256');
    // The events are written inside the action's transaction: a failure there must undo the whole action.
    const auditLog = ctx.audit as unknown as { pending: unknown };
    const pending = auditLog.pending;
    auditLog.pending = () => {
      throw new Error('disk full');
    };
    try {
      expect(String(await initialise(ctx).catch((e: unknown) => e))).to.contain('disk full');
    } finally {
      auditLog.pending = pending;
    }
    for (const label of ['devid-root', 'devid-factory', 'devid-operational', 'devid-audit']) expect(await ctx.provider.findKey(label), label).to.equal(undefined);
    expect((await ctx.provider.findKeyById(foreign.id))?.label).to.equal('devid-operational-7');
    expect(await ctx.store.caCertificates.count()).to.equal(0);
    const { hierarchy } = await initialise(ctx);
    expect(hierarchy.root.certificate.subject).to.contain('Root CA');
  });

  it('refuses a key that carries the recorded CKA_ID but not the certified public key, and two keys with one label', async () => {
    const { ctx } = env;
    const { hierarchy } = await initialise(ctx);
    const other = await createTestToken();
    await rawKey(other.tokenLabel, 'devid-root', hierarchy.root.record.keyId, other.pin);
    const provider = await Pkcs11KeyProvider.open(other);
    try {
      const err = await loadHierarchy(provider, hsmCrypto(provider), ctx.store, { allowOfflineRoot: true }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HierarchyError);
      expect((err as Error).message).to.contain('does not match the root CA certificate');
    } finally {
      await provider.close();
    }
    await rawKey(ctx.config.pkcs11.tokenLabel, 'devid-factory', Buffer.from('another id'));
    const twice = await loadHierarchy(ctx.provider, ctx.crypto, ctx.store).catch((e: unknown) => e);
    expect(twice).to.be.instanceOf(HsmError).with.property('code', 'duplicate-label');
    expect((twice as Error).message).to.contain('devid-factory');
  });

  it('serve runs with the root offline; the root refuses to sign until its token is back', async () => {
    const { ctx } = env;
    await initialise(ctx);
    await ctx.provider.destroyKey((await ctx.provider.findKey('devid-root'))!);
    expect(await loadHierarchy(ctx.provider, ctx.crypto, ctx.store).catch((e: unknown) => e)).to.be.instanceOf(HierarchyError);
    const running = await serve(ctx);
    try {
      expect(running.hierarchy.root.online).to.equal(false);
      expect(() => running.hierarchy.root.key).to.throw(OfflineKeyError);
      const issued = await issueOperational(running.hierarchy.operational, 'SN-OFF');
      const result = opensslVerify(running.hierarchy.root.certificate.toString('pem'), running.hierarchy.operational.certificate.toString('pem'), issued.pem);
      expect(result.ok, result.output).to.equal(true);
    } finally {
      await running.close();
    }
  });
});
