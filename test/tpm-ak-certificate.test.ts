import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import { expect } from 'chai';
import { Encoder } from 'cbor-x';
import { AcmeClient, AcmeError } from '../client/acme-client.ts';
import { OID } from '../ca/asn1.ts';
import { akCertificateProblem } from '../pki/attestation/tpm/ak-certificate.ts';
import { createToken } from '../server/tokens.ts';
import { directoryUrl, toLoopback } from './support/acme-device.ts';
import { startTestServer, type TestServer } from './support/api.ts';
import { opensslVerify } from './support/openssl.ts';
import { AK_ATTRIBUTES, softwareTpmOrSkip, tpmCsr, type SoftwareTpm } from './support/swtpm.ts';
import { TpmMaker, type AkOptions } from './support/tpm-maker.ts';

const HW_TYPE = '1.3.6.1.4.1.99999.3.1';
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest();
const encoder = new Encoder({ useRecords: false, mapsAsObjects: false });
const KEY_ATTRIBUTES = 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign';

describe('tpm format: an outside maker\'s AK certificate must meet WebAuthn 8.3.1', () => {
  describe('each rule alone (akCertificateProblem)', () => {
    const maker = new TpmMaker('unit-maker');
    const spki = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'der', type: 'spki' });
    const good: AkOptions = { serial: 'TPM-1', hwType: HW_TYPE };
    const rule = (options: Partial<AkOptions>) => akCertificateProblem(maker.akCertificate(spki, { ...good, ...options }));

    it('accepts an AK certificate as WebAuthn 8.3.1 describes it, naming the device by a HardwareModuleName or a PermanentIdentifier', () => {
      expect(rule({})).to.equal(undefined);
      expect(rule({ deviceName: 'permanent' })).to.equal(undefined);
      // OpenSSL reads the maker's certificates as a chain too: the fixture is no private dialect.
      const verified = opensslVerify(maker.pem(maker.root.der), maker.pem(maker.intermediate.der), maker.pem(maker.akCertificate(spki, good)));
      expect(verified.ok, verified.output).to.equal(true);
    });

    it('refuses each broken rule with badAttestationStatement material naming it', () => {
      const cases: Array<[Partial<AkOptions>, RegExp]> = [
        [{ version: 1 }, /version 3, not 1/],
        [{ subject: 'AK of TPM-1' }, /subject must be empty/],
        [{ sanCritical: false }, /subjectAltName must be critical/],
        [{ without: ['manufacturer'] }, /lacks the TPM manufacturer \(2\.23\.133\.2\.1\)/],
        [{ without: ['model'] }, /lacks the TPM model \(2\.23\.133\.2\.2\)/],
        [{ without: ['version', 'manufacturer'] }, /TPM manufacturer .*TPM version/],
        [{ deviceName: 'none' }, /HardwareModuleName or a PermanentIdentifier/],
        [{ purposes: null }, /extended key usage with tcg-kp-AIKCertificate/],
        [{ purposes: ['1.3.6.1.5.5.7.3.2'] }, /must contain tcg-kp-AIKCertificate \(2\.23\.133\.8\.3\)/],
        [{ ca: null }, /basicConstraints with CA false/],
        [{ ca: true }, /basicConstraints must have CA false/],
      ];
      for (const [options, detail] of cases) {
        const problem = rule(options);
        expect(problem, JSON.stringify(options)).to.not.equal(undefined);
        expect(problem!.check).to.equal('check 1 (AK certificate)');
        expect(problem!.detail, JSON.stringify(options)).to.match(/^WebAuthn 8\.3\.1: /).and.to.match(detail);
      }
      expect(akCertificateProblem(Buffer.from('3003020101', 'hex'))!.detail).to.match(/not a DER certificate/);
    });
  });

  describe('end to end with swtpm: devices whose AK a registered TPM maker certified', function () {
    this.timeout(300_000);
    let tpm: SoftwareTpm;
    let server: TestServer;
    let maker: TpmMaker;
    let count = 0;
    const operator = (token: string) => (method: string, path: string, body?: unknown) => server.request(method, path, { token, ...(body === undefined ? {} : { body }) });

    before(async function () {
      tpm = await softwareTpmOrSkip(this);
      server = await startTestServer('pglite');
      const alice = operator(server.tokens.operator);
      const bob = operator((await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'operator', name: 'bob' }, 'cli', new Date())).token);
      const CLASS = { ttl: '24h', stagedRenewal: false, factoryReattestEvery: '30d', serverAuth: false, counterRequired: true, onCloneSignal: 'refuse', attestationFormats: ['tpm'] };
      expect((await alice('PUT', '/operator/v1/device-classes/tpm-outside', CLASS)).status).to.equal(201);
      expect((await alice('PUT', '/operator/v1/models/tpm-gw', { hwType: HW_TYPE, manufacturer: 'TPM Gateways', defaultClass: 'tpm-outside' })).status).to.equal(201);
      maker = new TpmMaker('tpmco');
      const proposed = await alice('PUT', '/operator/v1/manufacturers/tpmco', { certificates: [maker.pem(maker.root.der), maker.pem(maker.intermediate.der)], models: ['tpm-gw'], crl: null });
      expect(proposed.status, proposed.text).to.equal(201);
      const approved = await bob('POST', '/operator/v1/manufacturers/tpmco/approve', { proposal: proposed.json.pending.sha256 });
      expect(approved.status, approved.text).to.equal(200);
    });
    after(async () => {
      await server?.close();
      tpm?.stop();
    });

    /** A TPM's AK certified by the maker (options bend one rule), the device claimed by its AK certificate's hash, an account. */
    async function claimed(options: Partial<AkOptions> = {}) {
      const serial = `TPMCO-${++count}`;
      const ak = tpm.createKey('ecc:ecdsa-sha256:null', AK_ATTRIBUTES);
      const akDer = maker.akCertificate(tpm.publicKeyDer(ak), { serial, hwType: HW_TYPE, ...options });
      const claim = await server.request('POST', `/operator/v1/devices/${serial}/claim`, { token: server.tokens.operator, body: { manufacturer: 'tpmco', model: 'tpm-gw', birthCertificateSha256: sha256(akDer).toString('hex') } });
      expect(claim.status, claim.text).to.equal(201);
      const acme = new AcmeClient(directoryUrl(server), AcmeClient.generateAccountKey(), server.rootPem, toLoopback);
      await acme.init();
      await acme.newAccount();
      return { serial, ak, akDer, acme };
    }

    /** Order, TPM2_Certify of a new key by the AK (qualifyingData = SHA-256(keyAuthorization)), answer; then finalize. */
    async function enroll(device: Awaited<ReturnType<typeof claimed>>, identifier: { type: string; value: string }) {
      const ordered = await device.acme.post(device.acme.directory.newOrder, { identifiers: [identifier] });
      const authz = (await device.acme.post(ordered.json.authorizations[0], '')).json;
      const challenge = authz.challenges.find((c: { type: string }) => c.type === 'device-attest-01');
      const key = tpm.createKey('ecc', KEY_ATTRIBUTES);
      const { certInfo, signature } = tpm.certify(key, device.ak, sha256(`${challenge.token}.${await device.acme.thumbprint()}`));
      const attStmt = new Map<string, unknown>([['ver', '2.0'], ['alg', -7], ['x5c', [device.akDer, maker.intermediate.der]], ['sig', signature], ['certInfo', certInfo], ['pubArea', tpm.publicArea(key)]]);
      await device.acme.post(challenge.url, { attObj: encoder.encode(new Map<string, unknown>([['fmt', 'tpm'], ['attStmt', attStmt]])).toString('base64url') });
      const csr = tpmCsr(device.serial, tpm.publicKeyDer(key), (tbs) => tpm.signDigest(key, sha256(tbs)));
      let order = (await device.acme.post(ordered.json.finalize, { csr: csr.toString('base64url') })).json;
      for (let polls = 0; order.status === 'processing' && polls < 20; polls += 1) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        order = (await device.acme.post(ordered.headers.location as string, '')).json;
      }
      expect(order.status, JSON.stringify(order)).to.equal('valid');
      return (await device.acme.post(order.certificate, '')).text;
    }

    async function refused(work: Promise<unknown>, detail: RegExp): Promise<void> {
      const err = await work.catch((e: unknown) => e);
      expect(err).to.be.instanceOf(AcmeError);
      expect((err as AcmeError).problem!.type).to.equal('urn:ietf:params:acme:error:badAttestationStatement');
      expect((err as AcmeError).problem!.detail).to.match(detail);
    }

    it('an AK certificate that meets 8.3.1 enrolls; a hardware-module order gets the AK certificate\'s HardwareModuleName in its SAN', async () => {
      const device = await claimed();
      const chainPem = await enroll(device, { type: 'hardware-module', value: `${device.serial}/${HW_TYPE}` });
      const pems = chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!;
      const verified = opensslVerify(server.rootPem, pems.slice(1).join('\n'), pems[0]!);
      expect(verified.ok, verified.output).to.equal(true);
      const leaf = AsnConvert.parse(new X509Certificate(pems[0]!).raw, asn1X509.Certificate);
      const san = AsnConvert.parse(leaf.tbsCertificate.extensions!.find((e) => e.extnID === OID.subjectAltName)!.extnValue, asn1X509.SubjectAlternativeName);
      const akSan = AsnConvert.parse(AsnConvert.parse(device.akDer, asn1X509.Certificate).tbsCertificate.extensions!.find((e) => e.extnID === OID.subjectAltName)!.extnValue, asn1X509.SubjectAlternativeName);
      const hwmn = (names: asn1X509.SubjectAlternativeName) => Buffer.from(AsnConvert.serialize(names.find((n) => n.otherName?.typeId === OID.hardwareModuleName)!));
      expect(hwmn(san).equals(hwmn(akSan))).to.equal(true);

      // A device named by a PermanentIdentifier in its AK certificate enrolls by serial; it has no HardwareModuleName to order.
      const named = await claimed({ deviceName: 'permanent' });
      expect(await enroll(named, { type: 'permanent-identifier', value: named.serial })).to.contain('BEGIN CERTIFICATE');
      const again = await claimed({ deviceName: 'permanent' });
      await refused(enroll(again, { type: 'hardware-module', value: `${again.serial}/${HW_TYPE}` }), /^identifier: .*no HardwareModuleName/);
    });

    it('refuses an AK certificate that breaks a rule, naming the rule', async () => {
      const cases: Array<[Partial<AkOptions>, RegExp]> = [
        [{ subject: 'AK' }, /^check 1 \(AK certificate\): WebAuthn 8\.3\.1: the AK certificate's subject must be empty/],
        [{ purposes: ['1.3.6.1.5.5.7.3.2'] }, /^check 1 \(AK certificate\): WebAuthn 8\.3\.1: the extended key usage must contain tcg-kp-AIKCertificate/],
        [{ sanCritical: false }, /^check 1 \(AK certificate\): WebAuthn 8\.3\.1: the subjectAltName must be critical/],
        [{ without: ['model'] }, /^check 1 \(AK certificate\): WebAuthn 8\.3\.1: .*TPM model/],
      ];
      for (const [options, detail] of cases) {
        const device = await claimed(options);
        await refused(enroll(device, { type: 'permanent-identifier', value: device.serial }), detail);
      }
    });
  });
});
