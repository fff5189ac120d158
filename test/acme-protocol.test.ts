import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { encode as cborEncode } from 'cbor-x';
import { Agent } from 'node:https';
import * as asn1js from 'asn1js';
import * as x509 from '@peculiar/x509';
import acme from 'acme-client';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { expect } from 'chai';
import { AcmeClient, AcmeError } from '../client/acme-client.ts';
import { rawConnection } from '../store/test-access.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { DATABASE_KINDS } from './support/databases.ts';
import { makeDevice, PUBLIC_HOST, toLoopback } from './support/acme-device.ts';
import { opensslVerify } from './support/openssl.ts';

const PREDECESSOR_OID = '1.3.6.1.4.1.99999.7';
const TYPE = (name: string) => `urn:ietf:params:acme:error:${name}`;
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

for (const kind of DATABASE_KINDS) {
  describe(`ACME protocol on ${kind}: resources, lineage, ARI, revocation, interoperability`, function () {
    this.timeout(180_000);
    let server: TestServer;
    let serial = 0;
    const next = () => `SN-P${++serial}`;
    before(async () => {
      server = await startTestServer(kind, { DEVID_PREDECESSOR_OID: PREDECESSOR_OID });
    });
    after(() => server.close());

    it('directory, newNonce (HEAD 200, GET 204), Replay-Nonce and the index link on every answer', async () => {
      const device = await makeDevice(server, next());
      await device.acme.init();
      const { directory } = device.acme;
      expect(Object.keys(directory).sort()).to.deep.equal(['keyChange', 'meta', 'newAccount', 'newNonce', 'newOrder', 'renewalInfo', 'revokeCert']);
      const head = await device.acme.send('HEAD', directory.newNonce);
      const get = await device.acme.send('GET', directory.newNonce);
      expect([head.status, get.status]).to.deep.equal([200, 204]);
      for (const answer of [head, get, await device.acme.get(`${directory.newNonce}x`)]) {
        expect(answer.headers['replay-nonce']).to.match(/^[A-Za-z0-9_-]{22}$/);
        expect(answer.headers.link).to.contain('/acme/directory>;rel="index"');
      }
    });

    it('enrolls and renews twice: predecessors in the database, the history and the extension; OpenSSL verifies each as a TLS client', async () => {
      const device = await makeDevice(server, next());
      const chain = [device.birthCertificate()];
      for (let i = 0; i < 3; i += 1) {
        const result = await device.enroll({ firmware: { version: `1.${i}.0`, digest: Buffer.alloc(32, i) } });
        const ext = result.certificate.extensions.find((e) => e.type === PREDECESSOR_OID)!;
        const octets = (asn1js.fromBER(ext.value).result as asn1js.Sequence).valueBlock.value[0] as asn1js.OctetString;
        expect(Buffer.from(octets.valueBlock.valueHexView).toString('hex')).to.equal(sha256(new Uint8Array(chain.at(-1)!.rawData)));
        const [, intermediate] = result.chainPem.split(/(?<=-----END CERTIFICATE-----)\s*/);
        const check = opensslVerify(server.rootPem, intermediate, result.certificate.toString('pem'), 'sslclient');
        expect(check.ok, check.output).to.equal(true);
        chain.push(result.certificate);
      }
      const history = (await server.request('GET', `/audit/v1/devices/${device.serial}/history`, { token: server.tokens.auditor })).json;
      const operational = history.certificates.filter((c: { kind: string }) => c.kind === 'operational');
      expect(operational.map((c: { predecessorSha256: string }) => c.predecessorSha256)).to.deep.equal(chain.slice(0, 3).map((c) => sha256(new Uint8Array(c.rawData))));
      const actions = history.events.map((e: { action: string }) => e.action);
      expect(actions.filter((a: string) => a === 'device.renewed')).to.have.length(2);
      expect(history.firmware.map((f: { version: string }) => f.version)).to.deep.equal(['1.0.0', '1.1.0', '1.2.0']);
    });

    it('renewalInfo: a window from 2/3 to 5/6 of the validity with Retry-After; in the past once the certificate is revoked over ACME', async () => {
      const device = await makeDevice(server, next());
      const { certificate } = await device.enroll();
      const window = (await device.renewalWindow())!;
      const start = certificate.notBefore.getTime();
      const lifetime = certificate.notAfter.getTime() - start;
      expect(window.start.getTime()).to.be.closeTo(start + (lifetime * 2) / 3, 1000);
      expect(window.end.getTime()).to.be.closeTo(start + (lifetime * 5) / 6, 1000);
      expect(window.retryAfterSeconds).to.be.within(60, 21600);
      expect((await device.renewIfDue()).toString()).to.equal('[object Object]');
      expect('next' in (await device.renewIfDue())).to.equal(true);

      const der = Buffer.from(certificate.rawData).toString('base64url');
      await device.acme.post(device.acme.directory.revokeCert, { certificate: der, reason: 1 });
      const again = await device.acme.post(device.acme.directory.revokeCert, { certificate: der }).catch((e: AcmeError) => e);
      expect((again as AcmeError).problem!.type).to.equal(TYPE('alreadyRevoked'));
      const past = (await device.renewalWindow())!;
      expect(past.end.getTime()).to.be.at.most(Date.now());
      expect('renewed' in (await device.renewIfDue())).to.equal(true);
      const unknown = await device.acme.get(`${device.acme.directory.renewalInfo}/AAAA.AAAA`);
      expect([unknown.status, unknown.json.type]).to.deep.equal([404, TYPE('malformed')]);
    });

    it('revokeCert by the certificate\'s own key; a birth certificate is not revoked over ACME; another account may not revoke', async () => {
      const device = await makeDevice(server, next());
      const { certificate, keyPem } = await device.enroll();
      const der = Buffer.from(certificate.rawData).toString('base64url');
      const other = await makeDevice(server, next());
      await other.acme.init();
      await other.acme.newAccount();
      const foreign = await other.acme.post(other.acme.directory.revokeCert, { certificate: der }).catch((e: AcmeError) => e);
      expect((foreign as AcmeError).problem!.type).to.equal(TYPE('unauthorized'));
      const birth = await device.acme.post(device.acme.directory.revokeCert, { certificate: Buffer.from(device.birthCertificate().rawData).toString('base64url') }).catch((e: AcmeError) => e);
      expect((birth as AcmeError).problem!.type).to.equal(TYPE('unauthorized'));
      const badReason = await device.acme.post(device.acme.directory.revokeCert, { certificate: der, reason: 6 }).catch((e: AcmeError) => e);
      expect((badReason as AcmeError).problem!.type).to.equal(TYPE('badRevocationReason'));
      await device.acme.post(device.acme.directory.revokeCert, { certificate: der, reason: 1 }, { jwkKey: createPrivateKey(keyPem) });
      const record = (await server.env.ctx.store.certificates.find(certificate.serialNumber))!;
      expect([record.revokedAt !== null, record.revocationReason]).to.deep.equal([true, 1]);
      const history = (await server.request('GET', `/audit/v1/devices/${device.serial}/history`, { token: server.tokens.auditor })).json;
      expect(history.events.map((e: { action: string }) => e.action)).to.include('certificate.revoked');
    });

    it('accounts: onlyReturnExisting, an existing key returns its account, contact update, keyChange, deactivation', async () => {
      const device = await makeDevice(server, next());
      const client = device.acme;
      await client.init();
      const none = await client.post(client.directory.newAccount, { onlyReturnExisting: true }).catch((e: AcmeError) => e);
      expect((none as AcmeError).problem!.type).to.equal(TYPE('accountDoesNotExist'));
      const created = await client.post(client.directory.newAccount, { termsOfServiceAgreed: true });
      expect(created.status).to.equal(201);
      client.accountUrl = undefined;
      const again = await client.post(client.directory.newAccount, {});
      expect([again.status, again.headers.location]).to.deep.equal([200, created.headers.location]);
      client.accountUrl = created.headers.location as string;
      expect((await client.post(client.accountUrl, { contact: ['mailto:ops@example.com'] })).json.contact).to.deep.equal(['mailto:ops@example.com']);

      const newKey = AcmeClient.generateAccountKey();
      const inner = await client.sign(client.directory.keyChange, { account: client.accountUrl, oldKey: await client.jwk() }, { jwkKey: newKey, header: { nonce: undefined } });
      await client.post(client.directory.keyChange, JSON.parse(inner));
      const rekeyed = new AcmeClient(client.directoryUrl, newKey, server.rootPem, toLoopback);
      await rekeyed.init();
      rekeyed.accountUrl = client.accountUrl;
      expect((await rekeyed.post(rekeyed.accountUrl, '')).json.status).to.equal('valid');
      const old = await client.post(client.accountUrl, '').catch((e: AcmeError) => e);
      expect(old).to.be.instanceOf(AcmeError);

      expect((await rekeyed.post(rekeyed.accountUrl, { status: 'deactivated' })).json.status).to.equal('deactivated');
      const after = await rekeyed.post(rekeyed.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: device.serial }] }).catch((e: AcmeError) => e);
      expect((after as AcmeError).problem!.type).to.equal(TYPE('unauthorized'));
    });

    it('accounts of every allowed key type (ES256, ES384, EdDSA, RS256) sign newAccount and kid requests; an alg that does not fit the key is refused', async () => {
      const keys = [
        generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey,
        generateKeyPairSync('ed25519').privateKey,
        generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
        AcmeClient.generateAccountKey(),
      ];
      for (const key of keys) {
        const client = new AcmeClient((await makeDevice(server, next())).acme.directoryUrl, key, server.rootPem, toLoopback);
        await client.init();
        const created = await client.post(client.directory.newAccount, { termsOfServiceAgreed: true });
        expect(created.status, key.asymmetricKeyType).to.equal(201);
        client.accountUrl = created.headers.location as string;
        // A second request by kid: the key comes from the cache of imported account keys.
        expect((await client.post(client.accountUrl, '')).json.status).to.equal('valid');
        const wrongAlg = key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'secp384r1' ? 'ES256' : 'ES384';
        // Signed properly, then the header's alg rewritten: the key decides which alg fits, before any signature check.
        const relabel = (flat: { protected: string }) => {
          flat.protected = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(flat.protected, 'base64url').toString()), alg: wrongAlg })).toString('base64url');
        };
        const refused = await client.post(client.accountUrl, '', { tamper: relabel }).catch((e: AcmeError) => e);
        expect((refused as AcmeError).problem!.type, `${key.asymmetricKeyType} signing as ${wrongAlg}`).to.equal(TYPE('badSignatureAlgorithm'));
      }
    });

    it('staged renewal: a class that allows it accepts the current operational certificate, until a birth-key attestation is overdue', async () => {
      const device = await makeDevice(server, next());
      await device.enroll();
      const { store } = server.env.ctx;
      await store.deviceClasses.put({ name: 'staged', ttlSeconds: 3600, stagedRenewal: true, factoryReattestEverySeconds: 3600, serverAuth: true, counterRequired: false, onCloneSignal: 'refuse', attestationFormats: ['devid'], est: false, onWithdrawnFirmware: 'refuse' }, new Date());
      await rawConnection(store)('devices').where({ serial: device.serial }).update({ device_class: 'staged' });
      const staged = await device.enroll({ staged: true });
      expect(staged.certificate.notAfter.getTime() - staged.certificate.notBefore.getTime()).to.equal(3600_000 + 300_000);
      expect(staged.certificate.getExtension(x509.ExtendedKeyUsageExtension)!.usages).to.include('1.3.6.1.5.5.7.3.1');
      await rawConnection(store)('devices').where({ serial: device.serial }).update({ factory_attested_at: new Date(Date.now() - 7200_000) });
      const overdue = await device.enroll({ staged: true, keepFiles: true }).catch((e: AcmeError) => e);
      expect((overdue as AcmeError).problem!.detail).to.contain('check 6');
      expect((await device.enroll()).certificate).to.be.ok;
    });

    it('an ACME library we did not write (acme-client) enrolls and renews twice with replaces; the attestation is built from the protocol reference alone', async () => {
      const device = await makeDevice(server, next());
      const birthDer = Buffer.from(device.birthCertificate().rawData);
      const factoryPem = readFileSync(`${device.dir}/factory-key.pem`);
      /** docs/device-makers/protocol.md, with cbor-x and node:crypto only: authData | sig over authData and SHA-256(keyAuthorization). */
      const attest = (keyAuthorization: string, newKey: string | Buffer, signCount: number) => {
        const jwk = createPublicKey(newKey).export({ format: 'jwk' });
        const cose = new Map<number, unknown>([[1, 2], [3, -7], [-1, 1], [-2, Buffer.from(jwk.x!, 'base64url')], [-3, Buffer.from(jwk.y!, 'base64url')]]);
        const spki = createPublicKey(newKey).export({ format: 'der', type: 'spki' });
        const counter = Buffer.alloc(4);
        counter.writeUInt32BE(signCount);
        const authData = Buffer.concat([createHash('sha256').update(PUBLIC_HOST).digest(), Buffer.from([0x41]), counter, Buffer.alloc(16), Buffer.from([0, 32]), createHash('sha256').update(spki).digest(), cborEncode(cose)]);
        const sig = nodeSign('sha256', Buffer.concat([authData, createHash('sha256').update(keyAuthorization).digest()]), createPrivateKey(factoryPem));
        return cborEncode(new Map<string, unknown>([['fmt', 'devid'], ['attStmt', new Map<string, unknown>([['alg', -7], ['sig', sig], ['x5c', [birthDer]]])], ['authData', authData]])).toString('base64url');
      };
      const agent = new Agent({ ca: server.rootPem, lookup: toLoopback });
      acme.axios.defaults.httpsAgent = agent;
      try {
        const accountKey = await acme.crypto.createPrivateEcdsaKey();
        const client = new acme.Client({ directoryUrl: `https://${PUBLIC_HOST}:${server.running.httpsPort}/acme/directory`, accountKey });
        await client.createAccount({ termsOfServiceAgreed: true });
        const thumbprint = await calculateJwkThumbprint(await exportJWK(createPublicKey(accountKey)));
        const api = (client as unknown as { api: { completeChallenge(url: string, data: unknown): Promise<unknown> } }).api;
        const issued: x509.X509Certificate[] = [];
        for (let round = 0; round < 3; round += 1) {
          const previous = issued.at(-1);
          const replaces = previous ? `${Buffer.from(previous.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId!, 'hex').toString('base64url')}.${Buffer.from(previous.serialNumber, 'hex').toString('base64url')}` : undefined;
          const order = await client.createOrder({ identifiers: [{ type: 'permanent-identifier' as 'dns', value: device.serial }], ...(replaces ? { replaces } : {}) } as Parameters<typeof client.createOrder>[0]);
          const [authz] = await client.getAuthorizations(order);
          const challenge = authz!.challenges[0]!;
          expect(challenge.type).to.equal('device-attest-01');
          const keyPem = await acme.crypto.createPrivateEcdsaKey();
          await api.completeChallenge(challenge.url, { attObj: attest(`${challenge.token}.${thumbprint}`, keyPem, round + 1) });
          const [, csr] = await acme.crypto.createCsr({}, keyPem);
          const pem = await client.getCertificate(await client.finalizeOrder(order, csr));
          issued.push(new x509.X509Certificate(pem.split(/(?<=-----END CERTIFICATE-----)/)[0]!));
        }
        const predecessors = [device.birthCertificate(), issued[0]!, issued[1]!].map((c) => sha256(new Uint8Array(c.rawData)));
        for (const [i, certificate] of issued.entries()) {
          expect(certificate.subject).to.equal(`CN=${device.serial}`);
          const ext = certificate.extensions.find((e) => e.type === PREDECESSOR_OID)!;
          const octets = (asn1js.fromBER(ext.value).result as asn1js.Sequence).valueBlock.value[0] as asn1js.OctetString;
          expect(Buffer.from(octets.valueBlock.valueHexView).toString('hex')).to.equal(predecessors[i]);
        }
        const history = (await server.request('GET', `/audit/v1/devices/${device.serial}/history`, { token: server.tokens.auditor })).json;
        expect(history.certificates.filter((c: { kind: string }) => c.kind === 'operational').map((c: { predecessorSha256: string }) => c.predecessorSha256)).to.deep.equal(predecessors);
      } finally {
        agent.destroy();
      }
    });

    it('a CSR asking for other names (another subject attribute, a DNS name) is badCSR', async () => {
      const device = await makeDevice(server, next());
      for (const subject of [`CN=${device.serial}, O=Someone Else`, 'CN=another-serial']) {
        const err = await device.enroll({ csrSubject: subject, keepFiles: true }).catch((e: AcmeError) => e);
        expect((err as AcmeError).problem!.type, subject).to.equal(TYPE('badCSR'));
      }
      expect(await server.env.ctx.store.certificates.byDevice(device.serial, 'operational')).to.have.length(0);
    });
  });
}
