import { expect } from 'chai';
import { certificatePem } from '../ca/pem.ts';
import { loadHierarchy } from '../ca/hierarchy.ts';
import { declareModel } from '../registry/catalogue/models.ts';
import { initialise } from '../server/ceremonies.ts';
import { createFirmwareCa, createModelFirmwareSigner } from '../server/firmware-ceremonies.ts';
import { createTestEnvironment, type TestEnvironment } from './support/context.ts';
import { opensslText, opensslVerify } from './support/openssl.ts';

describe('firmware intermediate and signers: root ceremony, HSM keys, codeSigning certificates checked by OpenSSL', function () {
  this.timeout(120_000);
  let env: TestEnvironment;

  before(async () => {
    env = await createTestEnvironment('pglite');
    await initialise(env.ctx);
    await declareModel(env.ctx.store, env.ctx.audit, 'test', 'thermo-2', { hwType: '1.3.6.1.4.1.99999.1.7', manufacturer: 'Acme Devices' }, new Date());
  });
  after(() => env.cleanup());

  it('a signer needs the firmware intermediate first', async () => {
    const refused = await createModelFirmwareSigner(env.ctx, 'thermo-2', 'cli').catch((e: unknown) => e);
    expect(String(refused)).to.contain('devid-ca ca create firmware');
  });

  it('the firmware intermediate: devid-firmware under the root, pathLen 0, keyCertSign and cRLSign, the root CRL; made once', async () => {
    const firmware = await createFirmwareCa(env.ctx, 'cli');
    expect(firmware.record.keyLabel).to.equal('devid-firmware');
    expect(firmware.slug).to.equal('firmware');
    const hierarchy = await loadHierarchy(env.ctx.provider, env.ctx.crypto, env.ctx.store);
    expect(hierarchy.firmware?.id).to.equal(firmware.id);
    const text = opensslText(firmware.certificate.toString('pem'));
    expect(text).to.match(/CA:TRUE, pathlen:0/);
    expect(text).to.match(/Certificate Sign, CRL Sign/);
    expect(text).to.contain('http://pki.devid.test/crl/root.crl');
    expect(text).to.contain('CN=devid-ca Firmware CA');
    expect(opensslVerify(hierarchy.root.certificate.toString('pem'), undefined, firmware.certificate.toString('pem')).ok).to.equal(true);
    expect(String(await createFirmwareCa(env.ctx, 'cli').catch((e: unknown) => e))).to.contain('exists already');
    const audited = await env.ctx.store.audit.page(0, 1000);
    expect(audited.map((e) => e.action)).to.include('ca.created');
  });

  it('a model\'s signer: a key in the token, digitalSignature and codeSigning only, chained to the root through the firmware intermediate', async () => {
    const signer = await createModelFirmwareSigner(env.ctx, 'thermo-2', 'cli');
    expect(signer.keyLabel).to.equal('devid-firmware-signer-thermo-2');
    expect(await env.ctx.provider.findKeyById(signer.keyId)).to.not.equal(undefined);
    const hierarchy = await loadHierarchy(env.ctx.provider, env.ctx.crypto, env.ctx.store);
    const pem = certificatePem(signer.certificateDer);
    const text = opensslText(pem);
    expect(text).to.match(/X509v3 Extended Key Usage: *\n *Code Signing\n/);
    expect(text).to.match(/X509v3 Key Usage: critical\n *Digital Signature\n/);
    expect(text).to.match(/CA:FALSE/);
    expect(text).to.contain('CN=thermo-2,OU=Firmware Signer');
    expect(text).to.contain('http://pki.devid.test/crl/firmware.crl');
    expect(text).to.contain('http://pki.devid.test/ca/firmware.crt');
    const verified = opensslVerify(hierarchy.root.certificate.toString('pem'), hierarchy.firmware!.certificate.toString('pem'), pem);
    expect(verified.ok, verified.output).to.equal(true);
    expect(opensslVerify(hierarchy.root.certificate.toString('pem'), undefined, pem).ok, 'not without the firmware intermediate').to.equal(false);
    const recorded = await env.ctx.store.certificates.find(signer.certificateSerial);
    expect(recorded?.kind).to.equal('firmware-signer');
    expect(recorded?.issuerId).to.equal(hierarchy.firmware!.id);
  });

  it('init refuses a token that holds a firmware intermediate key already: that is another hierarchy\'s', async () => {
    const other = await createTestEnvironment('pglite');
    try {
      await other.ctx.provider.createKey('devid-firmware', 'P-256');
      expect(String(await initialise(other.ctx).catch((e: unknown) => e))).to.contain('the token already holds a key labelled "devid-firmware"');
    } finally {
      await other.cleanup();
    }
  });

  it('init --firmware makes the firmware intermediate in the init ceremony, with its OCSP responder', async () => {
    const fresh = await createTestEnvironment('pglite');
    try {
      const { hierarchy } = await initialise(fresh.ctx, () => {}, { firmware: true });
      expect(hierarchy.firmware?.record.keyLabel).to.equal('devid-firmware');
      const loaded = await loadHierarchy(fresh.ctx.provider, fresh.ctx.crypto, fresh.ctx.store);
      expect(loaded.firmware?.id).to.equal(hierarchy.firmware!.id);
      expect((await fresh.ctx.store.ocspResponders.current()).map((r) => r.issuerId)).to.include(hierarchy.firmware!.id);
      expect(String(await createFirmwareCa(fresh.ctx, 'cli').catch((e: unknown) => e))).to.contain('exists already');
    } finally {
      await fresh.cleanup();
    }
  });

  it('the firmware intermediate is a root ceremony: refused while the root key is offline, leaving no key', async () => {
    const offline = await createTestEnvironment('pglite');
    try {
      await initialise(offline.ctx);
      await offline.ctx.provider.destroyKey((await offline.ctx.provider.findKey('devid-root'))!);
      expect(String(await createFirmwareCa(offline.ctx, 'cli').catch((e: unknown) => e))).to.contain('connect the token that holds the root key');
      expect(await offline.ctx.provider.findKey('devid-firmware')).to.equal(undefined);
    } finally {
      await offline.cleanup();
    }
  });

  it('one signer per model; an unknown or malformed model is refused and leaves no key', async () => {
    expect(String(await createModelFirmwareSigner(env.ctx, 'thermo-2', 'cli').catch((e: unknown) => e))).to.contain('has a firmware signer already');
    expect(String(await createModelFirmwareSigner(env.ctx, 'nope', 'cli').catch((e: unknown) => e))).to.contain('no model nope');
    expect(await env.ctx.provider.findKey('devid-firmware-signer-nope')).to.equal(undefined);
    expect(String(await createModelFirmwareSigner(env.ctx, '../x', 'cli').catch((e: unknown) => e))).to.contain('model must be');
  });
});
