import { spawnSync } from 'node:child_process';
import { createPrivateKey, X509Certificate as NodeX509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { AsnConvert } from '@peculiar/asn1-schema';
import { SubjectAlternativeName } from '@peculiar/asn1-x509';
import * as asn1js from 'asn1js';
import { expect } from 'chai';
import { crlServer, outsideCa, serveCrl, type OutsideCa } from './support/outside-ca.ts';

const HW_TYPE = '1.3.6.1.4.1.59999.1.7';

/** openssl verify of a birth against the outside root, with the intermediate as untrusted; CRL checking when given. */
function verify(work: string, ca: OutsideCa, leafPem: string, crlPem?: string): { ok: boolean; output: string } {
  writeFileSync(join(work, 'root.pem'), ca.rootPem);
  writeFileSync(join(work, 'intermediate.pem'), ca.intermediatePem);
  writeFileSync(join(work, 'leaf.pem'), leafPem);
  const args = ['verify', '-CAfile', join(work, 'root.pem'), '-untrusted', join(work, 'intermediate.pem')];
  if (crlPem !== undefined) {
    writeFileSync(join(work, 'crl.pem'), crlPem);
    args.push('-crl_check', '-CRLfile', join(work, 'crl.pem'));
  }
  args.push(join(work, 'leaf.pem'));
  const result = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
}

describe('outside manufacturer CA fixture', () => {
  let tmp: string;
  let ca: OutsideCa;

  before(() => {
    tmp = mkdtempSync(join(tmpdir(), 'outside-ca-'));
    ca = outsideCa('acme-oem', join(tmp, 'acme'));
  });

  after(() => rmSync(tmp, { recursive: true, force: true }));

  it('issues a birth certificate that openssl verifies against the outside root', () => {
    const birth = ca.birth({ serial: 'ACME-0001', hwType: HW_TYPE });
    const result = verify(tmp, ca, birth.certPem);
    expect(result.ok, result.output).to.equal(true);

    const cert = new x509.X509Certificate(birth.certPem);
    expect(cert.subject).to.equal('O=acme-oem, 2.5.4.5=ACME-0001, CN=acme-oem Model A1');
    expect(cert.issuer).to.equal('O=acme-oem, CN=acme-oem Device CA');
    expect(cert.serialNumber).to.equal(birth.serialHex);
    expect(new NodeX509Certificate(birth.der).serialNumber.toLowerCase()).to.equal(birth.serialHex);
    expect(birth.serialHex).to.match(/^[1-7][0-9a-f]{31}$/);
    expect(Buffer.from(cert.rawData).equals(birth.der)).to.equal(true);
    expect(birth.chainPem).to.equal(birth.certPem + ca.intermediatePem);
    expect(birth.keyPem).to.match(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(new NodeX509Certificate(birth.der).checkPrivateKey(createPrivateKey(birth.keyPem))).to.equal(true);

    const bc = cert.getExtension(x509.BasicConstraintsExtension)!;
    expect(bc.ca).to.equal(false);
    const ku = cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.critical).to.equal(true);
    expect(ku.usages).to.equal(x509.KeyUsageFlags.digitalSignature);
    expect(cert.getExtension(x509.SubjectKeyIdentifierExtension)).to.not.equal(null);
    const intermediate = new x509.X509Certificate(ca.intermediatePem);
    expect(cert.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).to.equal(intermediate.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
  });

  it('gives the outside root and intermediate the CA extensions a manufacturer PKI has', () => {
    const root = new x509.X509Certificate(ca.rootPem);
    const intermediate = new x509.X509Certificate(ca.intermediatePem);
    expect(root.subject).to.equal(root.issuer);
    const rootBc = root.getExtension(x509.BasicConstraintsExtension)!;
    expect([rootBc.ca, rootBc.critical]).to.deep.equal([true, true]);
    const intBc = intermediate.getExtension(x509.BasicConstraintsExtension)!;
    expect([intBc.ca, intBc.pathLength, intBc.critical]).to.deep.equal([true, 0, true]);
    for (const cert of [root, intermediate]) {
      const ku = cert.getExtension(x509.KeyUsagesExtension)!;
      expect(ku.critical).to.equal(true);
      expect(ku.usages).to.equal(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign);
    }
    expect(intermediate.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).to.equal(root.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(intermediate.getExtension(x509.CRLDistributionPointsExtension)).to.equal(null);
  });

  it('puts an RFC 4108 HardwareModuleName SEQUENCE { hwType OID, hwSerialNum OCTET STRING } in the SAN otherName', () => {
    const birth = ca.birth({ serial: 'ACME-0002', hwType: HW_TYPE });
    const cert = new x509.X509Certificate(birth.certPem);
    const sanExtension = cert.getExtension(x509.SubjectAlternativeNameExtension)!;
    const san = AsnConvert.parse(sanExtension.value, SubjectAlternativeName);
    expect(san).to.have.length(1);
    const otherName = san[0]!.otherName!;
    expect(otherName.typeId).to.equal('1.3.6.1.5.5.7.8.4');

    // Parsed with asn1js rather than anything of ours: the fixture must not share our reading of the structure.
    const parsed = asn1js.fromBER(otherName.value);
    expect(parsed.offset).to.equal(otherName.value.byteLength);
    const hwn = parsed.result as asn1js.Sequence;
    expect(hwn).to.be.instanceOf(asn1js.Sequence);
    expect(hwn.valueBlock.value).to.have.length(2);
    const [hwType, hwSerialNum] = hwn.valueBlock.value as [asn1js.ObjectIdentifier, asn1js.OctetString];
    expect(hwType).to.be.instanceOf(asn1js.ObjectIdentifier);
    expect(hwType.valueBlock.toString()).to.equal(HW_TYPE);
    expect(hwSerialNum).to.be.instanceOf(asn1js.OctetString);
    expect(Buffer.from(hwSerialNum.valueBlock.valueHexView).toString('latin1')).to.equal('ACME-0002');
  });

  it('leaves the SAN out without hwType, and the subject serialNumber out on request', () => {
    const matterLike = new x509.X509Certificate(ca.birth({ serial: 'ACME-0003' }).certPem);
    expect(matterLike.getExtension(x509.SubjectAlternativeNameExtension)).to.equal(null);
    expect(matterLike.subjectName.getField('2.5.4.5')).to.deep.equal(['ACME-0003']);

    const noSubjectSerial = new x509.X509Certificate(ca.birth({ serial: 'ACME-0004', hwType: HW_TYPE, subjectSerial: false }).certPem);
    expect(noSubjectSerial.subject).to.equal('O=acme-oem, CN=acme-oem Model A1');
    expect(noSubjectSerial.getExtension(x509.SubjectAlternativeNameExtension)).to.not.equal(null);
  });

  it('makes P-384 device keys on request', () => {
    const birth = ca.birth({ serial: 'ACME-0005', keyType: 'P-384' });
    const cert = new x509.X509Certificate(birth.certPem);
    expect((cert.publicKey.algorithm as EcKeyAlgorithm).namedCurve).to.equal('P-384');
    expect(verify(tmp, ca, birth.certPem).ok).to.equal(true);
  });

  it('gives births the IEEE 802.1AR no-expiry notAfter 99991231235959Z', () => {
    const birth = ca.birth({ serial: 'ACME-0006' });
    const cert = new x509.X509Certificate(birth.certPem);
    expect(cert.notAfter.toISOString()).to.equal('9999-12-31T23:59:59.000Z');
  });

  it('issues a manifest signer under the intermediate', () => {
    const signer = ca.signer();
    const result = verify(tmp, ca, signer.certPem);
    expect(result.ok, result.output).to.equal(true);
    const cert = new x509.X509Certificate(signer.certPem);
    expect(cert.getExtension(x509.KeyUsagesExtension)!.usages).to.equal(x509.KeyUsageFlags.digitalSignature);
    expect(new NodeX509Certificate(signer.certPem).checkPrivateKey(createPrivateKey(signer.keyPem))).to.equal(true);
  });

  it('revokes a birth: the CRL lists it, is served over HTTP, and makes openssl verify -crl_check fail', async () => {
    const revoked = ca.birth({ serial: 'ACME-0007', hwType: HW_TYPE });
    const kept = ca.birth({ serial: 'ACME-0008', hwType: HW_TYPE });
    ca.revoke(revoked);

    const crl = new x509.X509Crl(new Uint8Array(ca.crlDer()));
    const intermediate = new x509.X509Certificate(ca.intermediatePem);
    expect(crl.issuer).to.equal(intermediate.subject);
    expect(await crl.verify({ publicKey: intermediate.publicKey })).to.equal(true);
    expect(crl.entries.map((entry) => entry.serialNumber)).to.deep.equal([revoked.serialHex]);
    expect(crl.entries[0]!.reason).to.equal(x509.X509CrlReason.keyCompromise);
    expect(crl.getExtension(x509.AuthorityKeyIdentifierExtension)!.keyId).to.equal(intermediate.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId);
    expect(crl.getExtension('2.5.29.20')).to.not.equal(null); // CRL number
    const hoursAhead = (crl.nextUpdate!.getTime() - Date.now()) / 3_600_000;
    expect(hoursAhead).to.be.within(23, 25);

    const server = await serveCrl(ca);
    try {
      expect(server.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/acme-oem\.crl$/);
      const response = await fetch(server.url);
      expect(response.status).to.equal(200);
      expect(response.headers.get('content-type')).to.equal('application/pkix-crl');
      const served = new x509.X509Crl(new Uint8Array(await response.arrayBuffer()));
      expect(served.entries.map((entry) => entry.serialNumber)).to.deep.equal([revoked.serialHex]);
      expect(server.requests()).to.equal(1);
      expect((await fetch(server.url.replace(/\.crl$/, '.txt'))).status).to.equal(404);
      expect(server.requests()).to.equal(1);
    } finally {
      await server.close();
    }

    const crlPem = ca.crlPem();
    const refused = verify(tmp, ca, revoked.certPem, crlPem);
    expect(refused.ok).to.equal(false);
    expect(refused.output).to.contain('certificate revoked');
    const accepted = verify(tmp, ca, kept.certPem, crlPem);
    expect(accepted.ok, accepted.output).to.equal(true);
  });

  it('puts a CRL URL known before the CA exists into the CDP (crlServer listens first)', async () => {
    const server = await crlServer('globex');
    try {
      expect((await fetch(server.url)).status).to.equal(503);
      const globex = outsideCa('globex', join(tmp, 'globex'), { crlUrl: server.url });
      server.serve(globex);
      const birth = globex.birth({ serial: 'GX-1', hwType: HW_TYPE });
      for (const pem of [globex.intermediatePem, birth.certPem]) {
        const cdp = new x509.X509Certificate(pem).getExtension(x509.CRLDistributionPointsExtension)!;
        expect(cdp.distributionPoints[0]!.distributionPoint!.fullName![0]!.uniformResourceIdentifier).to.equal(server.url);
      }
      const response = await fetch(server.url);
      expect(response.status).to.equal(200);
      const crl = new x509.X509Crl(new Uint8Array(await response.arrayBuffer()));
      expect(crl.issuer).to.equal('O=globex, CN=globex Device CA');
      expect(crl.entries).to.have.length(0);
      expect(server.requests()).to.equal(2);
    } finally {
      await server.close();
    }
  });

  // No wall-clock bound here (it failed on a loaded machine): the fixture's cost is a benchmark's question, not a test's.
  it('issues a dozen births in a row, each a distinct certificate', () => {
    const births = Array.from({ length: 12 }, (_, i) => ca.birth({ serial: `SPEED-${i}`, hwType: HW_TYPE }));
    expect(new Set(births.map((b) => JSON.stringify(b))).size).to.equal(12);
  });
});
