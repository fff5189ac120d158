import { expect } from 'chai';
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';
import { DomainError } from '../errors/domain-error.ts';
import { readCrl } from '../registry/manufacturers/crl-reader.ts';
import { bulkCrl, outsideCa } from './support/outside-ca.ts';

/** The reader of other manufacturers' CRLs against @peculiar/x509 and OpenSSL (registry/manufacturers/crl-reader.ts). */
describe('manufacturer CRL reader', function () {
  this.timeout(120_000);
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'devid-crl-reader-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('reads what @peculiar/x509 reads from an OpenSSL CRL: issuer, times, number, every entry with its reason; the signature verifies over tbs', () => {
    const ca = outsideCa('reader', join(dir, 'reader'));
    const births = [ca.birth({ serial: 'r-1' }), ca.birth({ serial: 'r-2' }), ca.birth({ serial: 'r-3' })];
    ca.revoke(births[0]!);
    ca.revoke(births[2]!);
    const der = ca.crlDer();
    const ours = readCrl(der);
    const theirs = new x509.X509Crl(new Uint8Array(der));
    const intermediate = AsnConvert.parse(new x509.X509Certificate(ca.intermediatePem).rawData, Certificate);
    expect(ours.issuer.equals(Buffer.from(AsnConvert.serialize(intermediate.tbsCertificate.subject)))).to.equal(true);
    expect(ours.thisUpdate.getTime()).to.equal(theirs.thisUpdate.getTime());
    expect(ours.nextUpdate!.getTime()).to.equal(theirs.nextUpdate!.getTime());
    expect(ours.number).to.equal(1n);
    expect(ours.entries.map((e) => [e.serialHex, e.revokedAt.getTime(), e.reason])).to.deep.equal(theirs.entries.map((e) => [e.serialNumber.toLowerCase(), e.revocationDate.getTime(), e.reason ?? null]));
    expect(ours.entries.map((e) => e.serialHex).sort()).to.deep.equal([births[0]!.serialHex, births[2]!.serialHex].sort());
    const issuerKey = createPublicKey(ca.intermediatePem);
    expect(nodeVerify('sha256', ours.tbs, issuerKey, ours.signature)).to.equal(true);
  });

  it('reads a CRL of 100,000 entries (which @peculiar/x509 refuses) entirely', () => {
    const { der, certPem } = bulkCrl(join(dir, 'big'), 100_000, 7);
    expect(() => new x509.X509Crl(new Uint8Array(der))).to.throw(/node count/);
    const crl = readCrl(der);
    expect(crl.entries).to.have.length(100_000);
    expect(crl.number).to.equal(7n);
    expect(crl.entries[0]).to.deep.include({ serialHex: '10000000', reason: 1 });
    expect(nodeVerify('sha256', crl.tbs, createPublicKey(certPem), crl.signature)).to.equal(true);
  });

  it('hostile CRLs: every truncation and 3,000 byte mutations are a malformed problem or a CRL, never another error', () => {
    const ca = outsideCa('hostile', join(dir, 'hostile'));
    ca.revoke(ca.birth({ serial: 'h-1' }));
    const der = ca.crlDer();
    const attempt = (bytes: Buffer) => {
      try {
        readCrl(bytes);
      } catch (err) {
        expect(err, String(err)).to.be.instanceOf(DomainError);
      }
    };
    for (let length = 0; length < der.length; length += 1) attempt(der.subarray(0, length));
    let seed = 13;
    const random = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 3000; i += 1) {
      const mutated = Buffer.from(der);
      for (let flips = 1 + (random() % 3); flips > 0; flips -= 1) mutated[random() % mutated.length] = random() & 0xff;
      attempt(mutated);
    }
    expect(() => readCrl(Buffer.from([0x30, 0x84, 0xff, 0xff, 0xff, 0xff]))).to.throw(/not an X.509 CRL/);
  });
});
