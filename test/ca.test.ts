import { createHash, generateKeyPairSync } from 'node:crypto';
import * as asn1js from 'asn1js';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { expect } from 'chai';
import { OID } from '../ca/asn1.ts';
import { createHierarchy, HierarchyError, loadHierarchy, type Hierarchy } from '../ca/hierarchy.ts';
import { issueCertificate } from '../ca/issuance.ts';
import { extensionOidProblem } from '../ca/oid.ts';
import { birthProfile, DAY_MS, HOUR_MS, NO_EXPIRY, operationalProfile, serverProfile, type EndEntityContext } from '../ca/profiles.ts';
import { initialise } from '../server/init.ts';
import { serve } from '../server/serve.ts';
import { OfflineKeyError } from '../ca/issuer.ts';
import { createTestEnvironment, type TestEnvironment } from './support/context.ts';
import { opensslSubject, opensslText, opensslVerify } from './support/openssl.ts';
import { Pkcs11KeyProvider } from '../hsm/pkcs11-provider.ts';
import { hsmCrypto } from '../hsm/webcrypto.ts';
import { createTestToken } from './support/softhsm.ts';

const BASE = 'http://pki.devid.test';

function devicePublicKey(curve: 'P-256' | 'P-384' = 'P-256'): x509.PublicKey {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
  return new x509.PublicKey(publicKey.export({ format: 'der', type: 'spki' }));
}

function extension(cert: x509.X509Certificate, oid: string): x509.Extension {
  const ext = cert.extensions.find((e) => e.type === oid);
  if (!ext) throw new Error(`no extension ${oid}`);
  return ext;
}

function otherNames(cert: x509.X509Certificate): asn1X509.OtherName[] {
  const san = AsnConvert.parse(extension(cert, OID.subjectAltName).value, asn1X509.SubjectAlternativeName);
  return san.filter((n) => n.otherName).map((n) => n.otherName!);
}

describe('ca: hierarchy and profiles', () => {
  let env: TestEnvironment;
  let hierarchy: Hierarchy;
  const pem = (c: x509.X509Certificate) => c.toString('pem');

  before(async () => {
    env = await createTestEnvironment('pglite');
    ({ hierarchy } = await initialise(env.ctx));
  });
  after(() => env.cleanup());

  function context(issuer: 'factory' | 'operational', publicKey: x509.PublicKey, now = new Date()): EndEntityContext {
    return { issuer: hierarchy.issuer(issuer), publicKey, baseUrl: BASE, now, crypto: env.ctx.crypto };
  }

  describe('hierarchy (SPEC section 1)', () => {
    it('OpenSSL verifies both intermediates against the root', () => {
      for (const name of ['factory', 'operational'] as const) {
        const result = opensslVerify(pem(hierarchy.root.certificate), undefined, pem(hierarchy[name].certificate));
        expect(result.ok, result.output).to.equal(true);
      }
    });

    it('root: self-signed P-384, CA, keyCertSign+cRLSign critical, SKI, valid until 99991231235959Z', async () => {
      const root = hierarchy.root.certificate;
      expect(await root.isSelfSigned()).to.equal(true);
      expect(root.notAfter.toISOString()).to.equal('9999-12-31T23:59:59.000Z');
      const bc = root.getExtension(x509.BasicConstraintsExtension)!;
      expect([bc.ca, bc.critical]).to.deep.equal([true, true]);
      const ku = root.getExtension(x509.KeyUsagesExtension)!;
      expect(ku.usages).to.equal(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
      expect(ku.critical).to.equal(true);
      expect(root.getExtension(x509.SubjectKeyIdentifierExtension)).to.not.equal(null);
      expect((root.publicKey.algorithm as EcKeyAlgorithm).namedCurve).to.equal('P-384');
      expect(opensslText(pem(root))).to.contain('Not After : Dec 31 23:59:59 9999 GMT');
    });

    it('intermediates: pathLen 0 critical, key usage critical, SKI/AKI, root CRL, validity', () => {
      const rootSki = hierarchy.root.certificate.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
      for (const name of ['factory', 'operational'] as const) {
        const cert = hierarchy[name].certificate;
        const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
        expect([bc.ca, bc.pathLength, bc.critical]).to.deep.equal([true, 0, true]);
        const ku = cert.getExtension(x509.KeyUsagesExtension)!;
        expect([ku.usages, ku.critical]).to.deep.equal([x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true]);
        expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).to.equal(rootSki);
        expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)).to.not.equal(null);
        const cdp = cert.getExtension(x509.CRLDistributionPointsExtension)!;
        expect(JSON.stringify(cdp.distributionPoints)).to.contain(`${BASE}/crl/root.crl`);
        expect(cert.signatureAlgorithm.hash.name).to.equal('SHA-384');
      }
      expect(hierarchy.factory.certificate.notAfter.toISOString()).to.equal('9999-12-31T23:59:59.000Z');
      const years = (hierarchy.operational.certificate.notAfter.getTime() - Date.now()) / (365 * DAY_MS);
      expect(years).to.be.within(4.99, 5.01);
    });

    it('loads again from the database, finding each key in the token', async () => {
      const loaded = await loadHierarchy(env.ctx.provider, env.ctx.crypto, env.ctx.store);
      expect(loaded.operational.certificate.serialNumber).to.equal(hierarchy.operational.certificate.serialNumber);
    });

    it('refuses to start when a key in the token does not match its certificate', async () => {
      const other = await Pkcs11KeyProvider.open(await createTestToken());
      try {
        for (const [label, curve] of [['devid-root', 'P-384'], ['devid-factory', 'P-256'], ['devid-operational', 'P-256']] as const) {
          await other.createKey(label, curve);
        }
        const err = await loadHierarchy(other, hsmCrypto(other), env.ctx.store).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(HierarchyError);
        expect((err as Error).message).to.contain('does not match the root CA certificate');
      } finally {
        await other.close();
      }
    });

    it('refuses to create a second hierarchy', async () => {
      const err = await createHierarchy(env.ctx.provider, env.ctx.crypto, env.ctx.store, { organization: 'x', baseUrl: BASE, now: new Date() }).catch((e: unknown) => e);
      expect(err).to.be.instanceOf(HierarchyError);
      expect((err as Error).message).to.contain('already holds');
    });
  });

  describe('birth certificate (SPEC section 2)', () => {
    let cert: x509.X509Certificate;
    before(async () => {
      const publicKey = devicePublicKey();
      const issued = await env.ctx.store.transaction(async (tx) => {
        const profile = await birthProfile(context('factory', publicKey), {
          serial: 'SN-000123', manufacturer: 'Acme Devices', model: 'thermo-2', hwType: '1.3.6.1.4.1.99999.1.2',
        });
        return issueCertificate(tx, { issuer: hierarchy.factory, profile, publicKey, deviceSerial: 'SN-000123', predecessorSha256: null, now: new Date() });
      });
      cert = issued.certificate;
    });

    it('OpenSSL verifies it through the factory intermediate', () => {
      const result = opensslVerify(pem(hierarchy.root.certificate), pem(hierarchy.factory.certificate), pem(cert));
      expect(result.ok, result.output).to.equal(true);
    });

    it('subject serialNumber (PrintableString), O, CN; notAfter 9999; no EKU', () => {
      expect(opensslSubject(pem(cert))).to.equal('subject=CN=thermo-2,O=Acme Devices,serialNumber=SN-000123');
      const asn = AsnConvert.parse(cert.rawData, asn1X509.Certificate);
      const serialAttr = asn.tbsCertificate.subject[0]![0]!;
      expect(serialAttr.type).to.equal(OID.serialNumber);
      expect(serialAttr.value.printableString).to.equal('SN-000123');
      expect(cert.notAfter.toISOString()).to.equal(NO_EXPIRY.toISOString());
      expect(cert.getExtension(x509.ExtendedKeyUsageExtension)).to.equal(null);
    });

    it('SAN otherName HardwareModuleName with hwType and hwSerialNum', () => {
      const [name] = otherNames(cert);
      expect(name!.typeId).to.equal(OID.hardwareModuleName);
      const parsed = asn1js.fromBER(name!.value);
      const seq = parsed.result as asn1js.Sequence;
      const [hwType, hwSerial] = seq.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.OctetString];
      expect(hwType.valueBlock.toString()).to.equal('1.3.6.1.4.1.99999.1.2');
      expect(Buffer.from(hwSerial.valueBlock.valueHexView).toString('utf8')).to.equal('SN-000123');
      expect(opensslText(pem(cert))).to.match(/othername:\s*(HardwareModuleName|1\.3\.6\.1\.5\.5\.7\.8\.4)/i);
    });

    it('end-entity extensions: CA:FALSE, digitalSignature critical, SKI/AKI, AIA, CDP, backdated notBefore, 128-bit serial', () => {
      expectEndEntity(cert, 'factory');
    });
  });

  function expectEndEntity(cert: x509.X509Certificate, issuer: 'factory' | 'operational'): void {
    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).to.equal(false);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect([ku.usages, ku.critical]).to.deep.equal([x509.KeyUsageFlags.digitalSignature, true]);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)).to.not.equal(null);
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).to.equal(
      hierarchy[issuer].certificate.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId,
    );
    const text = opensslText(cert.toString('pem'));
    expect(text).to.contain(`OCSP - URI:${BASE}/ocsp`);
    expect(text).to.contain(`CA Issuers - URI:${BASE}/ca/${issuer}.crt`);
    expect(text).to.contain(`URI:${BASE}/crl/${issuer}.crl`);
    const skew = Date.now() - cert.notBefore.getTime();
    expect(skew).to.be.within(4 * 60_000, 6 * 60_000);
    expect(cert.serialNumber).to.match(/^(?!00)[0-9a-f]{32}$/);
  }

  describe('operational certificate (SPEC section 2)', () => {
    const predecessor = createHash('sha256').update('the birth certificate').digest();

    async function issueOperational(options: { predecessorOid?: string; serverAuth?: boolean; ttlMs?: number } = {}) {
      const publicKey = devicePublicKey();
      return env.ctx.store.transaction(async (tx) => {
        const profile = await operationalProfile(context('operational', publicKey), {
          serial: 'SN-000123', trustDomain: 'devices.example', ttlMs: options.ttlMs ?? 24 * HOUR_MS,
          serverAuth: options.serverAuth ?? false, predecessorSha256: predecessor,
          ...(options.predecessorOid ? { predecessorOid: options.predecessorOid } : {}),
        });
        return issueCertificate(tx, { issuer: hierarchy.operational, profile, publicKey, deviceSerial: 'SN-000123', predecessorSha256: predecessor.toString('hex'), now: new Date() });
      });
    }

    it('CN=serial, PermanentIdentifier and SPIFFE URI SANs, clientAuth, 24 h, predecessor recorded', async () => {
      const { certificate: cert, record } = await issueOperational();
      expect(opensslSubject(pem(cert))).to.equal('subject=CN=SN-000123');
      const [name] = otherNames(cert);
      expect(name!.typeId).to.equal(OID.permanentIdentifier);
      const seq = asn1js.fromBER(name!.value).result as asn1js.Sequence;
      expect((seq.valueBlock.value[0] as asn1js.Utf8String).valueBlock.value).to.equal('SN-000123');
      const san = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
      expect(san.critical).to.equal(false);
      expect(san.names.items.map((n) => n.value)).to.include('spiffe://devices.example/device/SN-000123');
      expect(cert.getExtension(x509.ExtendedKeyUsageExtension)!.usages).to.deep.equal([OID.clientAuth]);
      expect(cert.notAfter.getTime() - cert.notBefore.getTime()).to.equal(24 * HOUR_MS + 5 * 60_000);
      expect(record.predecessorSha256).to.equal(predecessor.toString('hex'));
      expect(cert.extensions.map((e) => e.type)).not.to.include('1.3.6.1.4.1.99999.7');
      expectEndEntity(cert, 'operational');
      const chain = opensslVerify(pem(hierarchy.root.certificate), pem(hierarchy.operational.certificate), pem(cert), 'sslclient');
      expect(chain.ok, chain.output).to.equal(true);
    });

    it('serverAuth too when the device class asks for it', async () => {
      const { certificate } = await issueOperational({ serverAuth: true });
      expect(certificate.getExtension(x509.ExtendedKeyUsageExtension)!.usages).to.deep.equal([OID.clientAuth, OID.serverAuth]);
    });

    it('carries the predecessor extension, SEQUENCE { OCTET STRING }, non-critical, when an OID is configured', async () => {
      const { certificate } = await issueOperational({ predecessorOid: '1.3.6.1.4.1.99999.7' });
      const ext = extension(certificate, '1.3.6.1.4.1.99999.7');
      expect(ext.critical).to.equal(false);
      const parsed = asn1js.fromBER(ext.value);
      expect(parsed.offset).to.equal(ext.value.byteLength);
      const seq = parsed.result as asn1js.Sequence;
      expect(seq.valueBlock.value).to.have.length(1);
      const octets = seq.valueBlock.value[0] as asn1js.OctetString;
      expect(octets).to.be.instanceOf(asn1js.OctetString);
      expect(Buffer.from(octets.valueBlock.valueHexView).equals(predecessor)).to.equal(true);
      const result = opensslVerify(pem(hierarchy.root.certificate), pem(hierarchy.operational.certificate), pem(certificate));
      expect(result.ok, result.output).to.equal(true);
    });

    it('never runs beyond the issuer notAfter', async () => {
      const { certificate } = await issueOperational({ ttlMs: 20 * 365 * DAY_MS });
      expect(certificate.notAfter.getTime()).to.equal(hierarchy.operational.notAfter.getTime());
    });
  });

  describe('server certificate (SPEC section 2)', () => {
    it('serverAuth for the public host, 90 days, verified by OpenSSL as an SSL server', async () => {
      const publicKey = devicePublicKey();
      const { certificate } = await env.ctx.store.transaction(async (tx) => {
        const profile = await serverProfile(context('operational', publicKey), 'ca.devid.test');
        return issueCertificate(tx, { issuer: hierarchy.operational, profile, publicKey, deviceSerial: null, predecessorSha256: null, now: new Date() });
      });
      expect(certificate.getExtension(x509.ExtendedKeyUsageExtension)!.usages).to.deep.equal([OID.serverAuth]);
      expect(Math.round((certificate.notAfter.getTime() - Date.now()) / DAY_MS)).to.equal(90);
      const result = opensslVerify(pem(hierarchy.root.certificate), pem(hierarchy.operational.certificate), pem(certificate), 'sslserver');
      expect(result.ok, result.output).to.equal(true);
      expect(opensslText(pem(certificate))).to.contain('DNS:ca.devid.test');
    });
  });

  describe('issuance pipeline', () => {
    it('records each certificate with a unique serial, its hash and its key hash', async () => {
      const before = await env.ctx.store.certificates.count();
      const publicKey = devicePublicKey('P-384');
      const { record, certificate } = await env.ctx.store.transaction(async (tx) => {
        const profile = await birthProfile(context('factory', publicKey), { serial: 'SN-2', manufacturer: 'A', model: 'm', hwType: '1.2.3.4' });
        return issueCertificate(tx, { issuer: hierarchy.factory, profile, publicKey, deviceSerial: 'SN-2', predecessorSha256: null, now: new Date() });
      });
      expect(await env.ctx.store.certificates.count()).to.equal(before + 1);
      const stored = (await env.ctx.store.certificates.bySerial(record.serial))!;
      expect(stored.der.equals(Buffer.from(certificate.rawData))).to.equal(true);
      expect(stored.sha256).to.equal(createHash('sha256').update(stored.der).digest('hex'));
      expect(stored.keySha256).to.equal(createHash('sha256').update(Buffer.from(publicKey.rawData)).digest('hex'));
    });
  });
});

describe('root key kept offline (SPEC section 1)', () => {
  it('serve runs with the intermediates only; the root refuses to sign until its token is back', async () => {
    const env = await createTestEnvironment('pglite');
    try {
      await initialise(env.ctx);
      const { provider, crypto, store } = env.ctx;
      await provider.destroyKey((await provider.findKey('devid-root'))!);
      const strict = await loadHierarchy(provider, crypto, store).catch((e: unknown) => e);
      expect(strict).to.be.instanceOf(HierarchyError);
      const running = await serve(env.ctx);
      try {
        expect(running.hierarchy.root.online).to.equal(false);
        expect(() => running.hierarchy.root.key).to.throw(OfflineKeyError);
        const publicKey = devicePublicKey();
        const issuer = running.hierarchy.factory;
        const { certificate } = await store.transaction(async (tx) => {
          const profile = await birthProfile({ issuer, publicKey, baseUrl: BASE, now: new Date(), crypto }, { serial: 'SN-OFF', manufacturer: 'A', model: 'm', hwType: '1.2.3.4' });
          return issueCertificate(tx, { issuer, profile, publicKey, deviceSerial: 'SN-OFF', predecessorSha256: null, now: new Date() });
        });
        const result = opensslVerify(running.hierarchy.root.certificate.toString('pem'), issuer.certificate.toString('pem'), certificate.toString('pem'));
        expect(result.ok, result.output).to.equal(true);
      } finally {
        await running.close();
      }
    } finally {
      await env.cleanup();
    }
  });
});

describe('init that fails half-way', () => {
  it('removes the keys it made, so that init can run again', async () => {
    const env = await createTestEnvironment('pglite');
    try {
      const append = env.ctx.audit.append.bind(env.ctx.audit);
      env.ctx.audit.append = async () => {
        throw new Error('disk full');
      };
      const err = await initialise(env.ctx).catch((e: unknown) => e);
      expect(String(err)).to.contain('disk full');
      expect(await env.ctx.provider.findKey('devid-root')).to.equal(undefined);
      expect(await env.ctx.store.caCertificates.count()).to.equal(0);
      env.ctx.audit.append = append;
      const { hierarchy } = await initialise(env.ctx);
      expect(hierarchy.root.certificate.subject).to.contain('Root CA');
    } finally {
      await env.cleanup();
    }
  });
});

describe('ca: predecessor OID check (SPEC section 2)', () => {
  it('accepts an enterprise-arc OID', () => {
    expect(extensionOidProblem('1.3.6.1.4.1.99999.1')).to.equal(undefined);
    expect(extensionOidProblem(`1.3.6.1.4.1.${2 ** 28 - 1}.1`)).to.equal(undefined);
  });

  it('refuses an arc of 2^28 or more, saying why', () => {
    expect(extensionOidProblem(`1.3.6.1.4.1.${2 ** 28}.1`)).to.contain('2^28');
    expect(extensionOidProblem('2.25.329800735698586629295641978511506172918')).to.contain("Go's crypto/x509");
  });

  it('refuses what is not an OID', () => {
    expect(extensionOidProblem('1.3.6.01')).to.contain('not a dotted OID');
    expect(extensionOidProblem('hello')).to.contain('not a dotted OID');
    expect(extensionOidProblem('1.40.1')).to.contain('below 40');
  });
});
