import { verify } from 'node:crypto';
import { readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { HsmError } from '../hsm/errors.ts';
import { Pkcs11KeyProvider } from '../hsm/pkcs11-provider.ts';
import { createTestToken, MODULE_PATH, SOFTHSM_CONF, type TestToken } from './support/softhsm.ts';

/** The token directory of the tests' SoftHSM configuration. */
const tokensDir = () => /directories\.tokendir = (.*)/.exec(readFileSync(SOFTHSM_CONF, 'utf8'))![1]!.trim();
import pkcs11js from 'pkcs11js';
import { acquireModule, releaseModule } from '../hsm/pkcs11-module.ts';
import { findTokenSlot } from '../hsm/pkcs11-provider.ts';

describe('hsm: PKCS#11 key provider against SoftHSM2', () => {
  let token: TestToken;
  let provider: Pkcs11KeyProvider;

  before(async () => {
    token = await createTestToken();
    provider = await Pkcs11KeyProvider.open(token);
  });
  after(() => provider.close());

  for (const curve of ['P-256', 'P-384'] as const) {
    it(`generates a ${curve} key that is in the token, sensitive and never extractable`, async () => {
      const key = await provider.createKey(`key-${curve}`, curve);
      expect(key.curve).to.equal(curve);
      // docs/reference/certificates.md: signing only; left unset, SoftHSM would allow decrypt and unwrap too.
      expect(await provider.attributes(key)).to.deep.equal({
        token: true, private: true, sensitive: true, extractable: false, alwaysSensitive: true, neverExtractable: true,
        sign: true, decrypt: false, unwrap: false, derive: false,
      });
    });

    it(`signs with the ${curve} key; Node's crypto verifies the signature`, async () => {
      const key = (await provider.findKey(`key-${curve}`))!;
      const data = Buffer.from(`data signed by ${curve}`);
      const signature = await provider.sign(key, data);
      const hash = curve === 'P-256' ? 'sha256' : 'sha384';
      expect(verify(hash, data, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, signature)).to.equal(true);
      expect(verify(hash, Buffer.from('other data'), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, signature)).to.equal(false);
    });
  }

  it('finds a key again by label with the same id and public key', async () => {
    const created = await provider.createKey('again', 'P-256');
    const found = (await provider.findKey('again'))!;
    expect(found.id.equals(created.id)).to.equal(true);
    expect(found.publicKey.equals(created.publicKey)).to.equal(true);
    expect(await provider.findKey('no-such-key')).to.equal(undefined);
  });

  it('refuses a second key with a label already in use', async () => {
    await provider.createKey('unique-label', 'P-256');
    const err = await provider.createKey('unique-label', 'P-256').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HsmError).with.property('code', 'duplicate-label');
  });

  it('signs concurrently on the session pool, every signature valid', async () => {
    const key = (await provider.findKey('key-P-256'))!;
    const messages = Array.from({ length: 40 }, (_, i) => Buffer.from(`message ${i}`));
    const signatures = await Promise.all(messages.map((m) => provider.sign(key, m)));
    signatures.forEach((signature, i) => {
      expect(verify('sha256', messages[i]!, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, signature)).to.equal(true);
    });
  });

  it('a second provider on the same token sees the same keys', async () => {
    const other = await Pkcs11KeyProvider.open(token);
    try {
      const key = (await other.findKey('key-P-384'))!;
      const signature = await other.sign(key, Buffer.from('x'));
      expect(verify('sha384', Buffer.from('x'), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, signature)).to.equal(true);
    } finally {
      await other.close();
    }
  });

  it('two private keys with one label are an error, not a choice', async () => {
    await provider.createKey('twice', 'P-256');
    const lib = acquireModule(token.modulePath);
    try {
      const session = lib.C_OpenSession((await findTokenSlot(lib, token.tokenLabel))!, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      const label = { type: pkcs11js.CKA_LABEL, value: 'twice' };
      lib.C_GenerateKeyPair(session, { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
        [label, { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }],
        [label, { type: pkcs11js.CKA_TOKEN, value: true }, { type: pkcs11js.CKA_PRIVATE, value: true }, { type: pkcs11js.CKA_SIGN, value: true }]);
      lib.C_CloseSession(session);
    } finally {
      releaseModule(token.modulePath);
    }
    const err = await provider.findKey('twice').catch((e: unknown) => e);
    expect(err).to.be.instanceOf(HsmError).with.property('code', 'duplicate-label');
  });

  it('finds a key by its CKA_ID, whatever its label', async () => {
    const created = await provider.createKey('by-id', 'P-256');
    const found = (await provider.findKeyById(created.id))!;
    expect(found.label).to.equal('by-id');
    expect(found.publicKey.equals(created.publicKey)).to.equal(true);
    expect(await provider.findKeyById(Buffer.alloc(16))).to.equal(undefined);
  });

  describe('recovery (a network HSM blip, a token reloaded under the server)', () => {
    const lib = () => acquireModule(token.modulePath);
    const signs = async (key: Awaited<ReturnType<typeof provider.createKey>>) => {
      const signature = await provider.sign(key, Buffer.from('after the blip'));
      expect(verify('sha256', Buffer.from('after the blip'), { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, signature)).to.equal(true);
    };

    it('sessions closed under it are reopened, with a login, and the signature is made', async () => {
      const key = (await provider.findKey('key-P-256'))!;
      const module = lib();
      try {
        module.C_CloseAllSessions((await findTokenSlot(module, token.tokenLabel))!);
      } finally {
        releaseModule(token.modulePath);
      }
      await signs(key);
      await provider.ping();
    });

    it('a logout under it (CKR_USER_NOT_LOGGED_IN) is repaired by a new login', async () => {
      const key = (await provider.findKey('key-P-256'))!;
      const module = lib();
      try {
        const session = module.C_OpenSession((await findTokenSlot(module, token.tokenLabel))!, pkcs11js.CKF_SERIAL_SESSION);
        module.C_Logout(session);
        module.C_CloseSession(session);
      } finally {
        releaseModule(token.modulePath);
      }
      await signs(key);
    });

    it('a token whose files vanished under it and came back is found again by CKA_ID', async () => {
      const key = (await provider.findKey('key-P-256'))!;
      // SoftHSM keeps each token in a directory whose token.object names its label.
      const mine = readdirSync(tokensDir()).map((d) => join(tokensDir(), d))
        .find((d) => readFileSync(join(d, 'token.object')).includes(Buffer.from(token.tokenLabel)));
      expect(mine, `no token directory in ${tokensDir()} names ${token.tokenLabel}: ${readdirSync(tokensDir()).join(', ')}`).to.be.a('string');
      if (!mine) return;
      renameSync(mine, `${mine}.away`);
      await provider.sign(key, Buffer.from('while away')).catch(() => undefined);
      renameSync(`${mine}.away`, mine);
      await signs(key);
    });
  });

  describe('clear errors', () => {
    it('module not found', async () => {
      const err = await Pkcs11KeyProvider.open({ ...token, modulePath: '/nonexistent/libpkcs11.so' }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HsmError).with.property('code', 'module-not-found');
      expect((err as Error).message).to.contain('DEVID_PKCS11_MODULE');
    });

    it('token not found', async () => {
      const err = await Pkcs11KeyProvider.open({ ...token, tokenLabel: 'no-such-token' }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HsmError).with.property('code', 'token-not-found');
      expect((err as Error).message).to.contain('no-such-token');
    });

    it('wrong PIN', async () => {
      const fresh = await createTestToken();
      const err = await Pkcs11KeyProvider.open({ ...fresh, pin: 'wrong-pin' }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HsmError).with.property('code', 'pin-incorrect');
      expect((err as Error).message).not.to.contain('wrong-pin');
      // The module stays usable after the failure.
      const ok = await Pkcs11KeyProvider.open({ ...fresh, modulePath: MODULE_PATH });
      await ok.close();
    });
  });
});
