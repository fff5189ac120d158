import { createPublicKey, generateKeyPairSync, webcrypto, type KeyObject } from 'node:crypto';
import * as asn1js from 'asn1js';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { AcmeError } from '../client/acme-client.ts';
import { buildAttestation } from '../client/attestation.ts';
import { certIdOf, type Device } from '../client/device.ts';
import { OID } from '../ca/asn1.ts';
import { startTestServer, TEST_MODEL, type TestServer } from './support/api.ts';
import { makeDevice } from './support/acme-device.ts';
import { opensslVerify } from './support/openssl.ts';

const ASSIGNER = '1.3.6.1.4.1.99999.42';
const HW_TYPE = TEST_MODEL.hwType;
const TYPE = (name: string) => `urn:ietf:params:acme:error:${name}`;

interface Identifier {
  type: string;
  value: string;
}

/** The device's name as a CSR's subjectAltName would request it (asn1js and @peculiar/asn1-x509, not the CA's encoder). */
function sanName(identifier: Identifier): asn1X509.GeneralName {
  const [serial, oid] = identifier.value.split('/') as [string, string | undefined];
  const inner = identifier.type === 'hardware-module'
    ? new asn1js.Sequence({ value: [new asn1js.ObjectIdentifier({ value: oid! }), new asn1js.OctetString({ valueHex: Buffer.from(serial, 'utf8') })] })
    : new asn1js.Sequence({ value: [new asn1js.Utf8String({ value: serial }), ...(oid ? [new asn1js.ObjectIdentifier({ value: oid })] : [])] });
  const typeId = identifier.type === 'hardware-module' ? OID.hardwareModuleName : OID.permanentIdentifier;
  return new asn1X509.GeneralName({ otherName: new asn1X509.OtherName({ typeId, value: inner.toBER() }) });
}

async function csrFor(key: KeyObject, serial: string, names: asn1X509.GeneralName[]): Promise<string> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256' };
  const privateKey = await webcrypto.subtle.importKey('pkcs8', key.export({ format: 'der', type: 'pkcs8' }), algorithm, false, ['sign']);
  const publicKey = await webcrypto.subtle.importKey('spki', createPublicKey(key).export({ format: 'der', type: 'spki' }), algorithm, true, ['verify']);
  const extensions = new asn1X509.Extensions([new asn1X509.Extension({ extnID: OID.subjectAltName, critical: false, extnValue: new OctetString(AsnConvert.serialize(new asn1X509.SubjectAlternativeName(names))) })]);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: `CN=${serial}`, keys: { privateKey, publicKey }, signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    ...(names.length ? { attributes: [new x509.Attribute('1.2.840.113549.1.9.14', [AsnConvert.serialize(extensions)])] } : {}),
  });
  return Buffer.from(csr.rawData).toString('base64url');
}

/** The SAN's otherName, re-encoded: what the certificate says of the device. */
function deviceNameOf(certificate: x509.X509Certificate): Buffer {
  const san = AsnConvert.parse(certificate.getExtension(x509.SubjectAlternativeNameExtension)!.value, asn1X509.SubjectAlternativeName);
  const names = san.filter((n) => n.otherName);
  expect(names, 'one otherName').to.have.length(1);
  return Buffer.from(AsnConvert.serialize(names[0]!));
}

describe('ACME identifiers of draft-ietf-acme-device-attest-09: permanent-identifier with the assigner, hardware-module; the SAN as ordered', function () {
  this.timeout(180_000);
  let server: TestServer;
  let count = 0;
  const next = () => `SN-ID${++count}`;

  before(async () => {
    server = await startTestServer('pglite', { DEVID_ASSIGNER_OID: ASSIGNER });
  });
  after(() => server.close());

  async function device(): Promise<Device> {
    const made = await makeDevice(server, next());
    await made.acme.init();
    await made.acme.newAccount();
    return made;
  }

  /** An enrollment ordered with `identifier`, the CSR requesting `csrNames`: the order, authorization and certificate as the CA answered them. */
  async function enroll(dev: Device, identifier: Identifier, options: { csrNames?: asn1X509.GeneralName[]; replaces?: x509.X509Certificate } = {}) {
    const { acme } = dev;
    const ordered = await acme.post(acme.directory.newOrder, { identifiers: [identifier], ...(options.replaces ? { replaces: certIdOf(options.replaces) } : {}) });
    const authz = (await acme.post(ordered.json.authorizations[0], '')).json;
    const challenge = authz.challenges.find((c: { type: string }) => c.type === 'device-attest-01');
    const key = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const attObj = await buildAttestation({
      factoryKey: dev.factoryKey, x5c: dev.birthChain().map((c) => Buffer.from(c.rawData)), keyAuthorization: `${challenge.token}.${await acme.thumbprint()}`,
      rpId: dev.rpId, newKeySpki: createPublicKey(key).export({ format: 'der', type: 'spki' }), signCount: dev.nextSignCount(),
    });
    await acme.post(challenge.url, { attObj: attObj.toString('base64url') });
    const order = (await acme.post(ordered.json.finalize, { csr: await csrFor(key, dev.serial, options.csrNames ?? []) })).json;
    expect(order.status, JSON.stringify(order)).to.equal('valid');
    const chainPem = (await acme.post(order.certificate, '')).text;
    return { ordered: ordered.json, authz, order, chainPem, certificate: new x509.X509Certificate(chainPem.split(/(?<=-----END CERTIFICATE-----)/)[0]!) };
  }

  async function refused(work: Promise<unknown>, type: string, detail?: RegExp): Promise<void> {
    const err = await work.catch((e: unknown) => e);
    expect(err, `expected ${type}`).to.be.instanceOf(AcmeError);
    const problem = (err as AcmeError).problem!;
    expect(problem.type, JSON.stringify(problem)).to.equal(TYPE(type));
    if (detail) expect(problem.detail).to.match(detail);
  }

  const order = (dev: Device, identifier: unknown) => dev.acme.post(dev.acme.directory.newOrder, { identifiers: [identifier] });

  it('a permanent-identifier with the CA\'s assigner: echoed in the order and authorization, carried in the SAN with the assigner, requested by the CSR', async () => {
    const dev = await device();
    const identifier = { type: 'permanent-identifier', value: `${dev.serial}/${ASSIGNER}` };
    const { ordered, authz, order: done, certificate, chainPem } = await enroll(dev, identifier, { csrNames: [sanName(identifier)] });
    expect(ordered.identifiers).to.deep.equal([identifier]);
    expect(done.identifiers).to.deep.equal([identifier]);
    expect(authz.identifier).to.deep.equal(identifier);
    expect(deviceNameOf(certificate).equals(Buffer.from(AsnConvert.serialize(sanName(identifier))))).to.equal(true);
    expect(certificate.subject).to.equal(`CN=${dev.serial}`);
    const pems = chainPem.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!;
    const verified = opensslVerify(server.rootPem, pems.slice(1).join('\n'), pems[0]!, 'sslclient');
    expect(verified.ok, verified.output).to.equal(true);
  });

  it('refuses another assigner (rejectedIdentifier), a value off the ABNF (malformed), another identifier type (unsupportedIdentifier), writing no order', async () => {
    const dev = await device();
    const before = (await dev.acme.post(`${dev.acme.accountUrl!}/orders`, '')).json.orders.length;
    await refused(order(dev, { type: 'permanent-identifier', value: `${dev.serial}/1.3.6.1.4.1.99999.43` }), 'rejectedIdentifier', /assigner of this CA's device identifiers is 1\.3\.6\.1\.4\.1\.99999\.42/);
    await refused(order(dev, { type: 'permanent-identifier', value: `${dev.serial}/${ASSIGNER}.0` }), 'rejectedIdentifier');
    await refused(order(dev, { type: 'permanent-identifier', value: `${dev.serial}/1.3.06` }), 'malformed');
    await refused(order(dev, { type: 'hardware-module', value: dev.serial }), 'malformed');
    await refused(order(dev, { type: 'hardware-module', value: `${dev.serial}/${HW_TYPE}/1` }), 'malformed');
    await refused(order(dev, { type: 'dns', value: dev.serial }), 'unsupportedIdentifier');
    await refused(order(dev, { type: 'permanent-identifier', value: `${'S'.repeat(65)}/${ASSIGNER}` }), 'rejectedIdentifier', /device serial/);
    await refused(order(dev, { type: 'hardware-module', value: `SN-NOBODY/${HW_TYPE}` }), 'rejectedIdentifier', /SN-NOBODY/);
    expect((await dev.acme.post(`${dev.acme.accountUrl!}/orders`, '')).json.orders.length).to.equal(before);
  });

  it('a hardware-module must be the birth certificate\'s: another hwType is rejectedIdentifier; the CSR may ask for it and nothing else; a renewal keeps its form', async () => {
    const dev = await device();
    await refused(order(dev, { type: 'hardware-module', value: `${dev.serial}/1.3.6.1.4.1.99999.1.3` }), 'rejectedIdentifier', /names hardware type 1\.3\.6\.1\.4\.1\.99999\.1\.2, not 1\.3\.6\.1\.4\.1\.99999\.1\.3/);
    const identifier = { type: 'hardware-module', value: `${dev.serial}/${HW_TYPE}` };
    // A CSR that asks for the plain PermanentIdentifier of a hardware-module order is refused, and the order with it.
    await refused(enroll(dev, identifier, { csrNames: [sanName({ type: 'permanent-identifier', value: dev.serial })] }), 'badCSR', /HardwareModuleName/);
    const first = await enroll(dev, identifier, { csrNames: [sanName(identifier)] });
    expect(first.order.identifiers).to.deep.equal([identifier]);
    const expected = Buffer.from(AsnConvert.serialize(sanName(identifier)));
    expect(deviceNameOf(first.certificate).equals(expected)).to.equal(true);
    // The SAN's name is the birth certificate's HardwareModuleName, octet for octet.
    const birthSan = AsnConvert.parse(dev.birthCertificate().getExtension(x509.SubjectAlternativeNameExtension)!.value, asn1X509.SubjectAlternativeName);
    expect(Buffer.from(AsnConvert.serialize(birthSan.find((n) => n.otherName)!)).equals(expected)).to.equal(true);
    const renewed = await enroll(dev, identifier, { replaces: first.certificate });
    expect(renewed.order.replaces).to.equal(certIdOf(first.certificate));
    expect(deviceNameOf(renewed.certificate).equals(expected), 'the renewal names the device as its order did').to.equal(true);
    // Each order decides: a later renewal ordered by serial alone gets the plain PermanentIdentifier back.
    const plain = await enroll(dev, { type: 'permanent-identifier', value: dev.serial }, { replaces: renewed.certificate });
    expect(deviceNameOf(plain.certificate).equals(Buffer.from(AsnConvert.serialize(sanName({ type: 'permanent-identifier', value: dev.serial }))))).to.equal(true);
  });

  it('without DEVID_ASSIGNER_OID no assigner is accepted; the plain serial still is', async () => {
    const other = await startTestServer('pglite');
    try {
      const dev = await makeDevice(other, 'SN-NOASSIGNER');
      await dev.acme.init();
      await dev.acme.newAccount();
      await refused(dev.acme.post(dev.acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: `${dev.serial}/${ASSIGNER}` }] }), 'rejectedIdentifier', /names no assigner/);
      const plain = await dev.acme.post(dev.acme.directory.newOrder, { identifiers: [{ type: 'permanent-identifier', value: dev.serial }] });
      expect(plain.json.identifiers).to.deep.equal([{ type: 'permanent-identifier', value: dev.serial }]);
    } finally {
      await other.close();
    }
  });
});
