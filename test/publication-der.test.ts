import { expect } from 'chai';
import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { AsnConvert, OctetString } from '@peculiar/asn1-schema';
import { BasicOCSPResponse, CertID, CertStatus, OCSPRequest, OCSPResponse, OCSPResponseStatus, Request, ResponderID, ResponseBytes, ResponseData, RevokedInfo, SingleResponse, TBSRequest, id_pkix_ocsp_basic } from '@peculiar/asn1-ocsp';
import { AlgorithmIdentifier, Certificate, CertificateList, CRLReason, CRLReasons, Extension, Name, RevokedCertificate, TBSCertList, Time, Version } from '@peculiar/asn1-x509';
import { CrlEntryWriter, encodeCrl, encodeSignedCrl, encodeTbsCertList } from '../publish/crl-der.ts';
import { basicResponse, certIdDer, ocspErrorResponse, responseData, singleResponse, type CertStatus as OurStatus } from '../publish/ocsp-der.ts';
import { HASH_ALGORITHMS } from '../publish/cert-ids.ts';
import { certIdOfRequest } from '../publish/ocsp-request.ts';
import { CrlPublisher } from '../publish/crl-publisher.ts';
import { Publication } from '../publish/publication.ts';
import type { AuditLog } from '../registry/audit/audit-log.ts';
import { createLogger } from '../platform/logger.ts';
import { createMemoryCa, type MemoryCa } from './support/memory-ca.ts';
import { rawConnection } from '../store/test-access.ts';

const SIGNATURE = { algorithm: Buffer.from('300a06082a8648ce3d040302', 'hex'), signature: Buffer.from('3006020101020101', 'hex') };
const at = (iso: string) => new Date(iso);
/** The ArrayBuffer of exactly these bytes, as @peculiar/asn1-schema fields take them. */
const ab = (bytes: Buffer): ArrayBuffer => new Uint8Array(bytes).buffer;

describe('OCSP responses and CRLs written as DER (publish/)', function () {
  this.timeout(60_000);

  it('an OCSP response is byte-identical to @peculiar/asn1-ocsp for good, revoked (with and without reason) and unknown', () => {
    const nameHash = randomBytes(20);
    const keyHash = randomBytes(20);
    const serial = Buffer.from('7f1e2d3c4b5a69788796a5b4c3d2e1f0', 'hex');
    const thisUpdate = at('2026-11-23T10:00:00Z');
    const nextUpdate = at('2026-11-27T10:00:00Z');
    const statuses: Array<[OurStatus, CertStatus]> = [
      [{ status: 'good' }, new CertStatus({ good: null })],
      [{ status: 'unknown' }, new CertStatus({ unknown: null })],
      [{ status: 'revoked', revokedAt: at('2026-11-20T01:02:03Z'), reason: 1 }, new CertStatus({ revoked: new RevokedInfo({ revocationTime: at('2026-11-20T01:02:03Z'), revocationReason: new CRLReason(CRLReasons.keyCompromise) }) })],
      [{ status: 'revoked', revokedAt: at('2051-01-01T00:00:00Z'), reason: 0 }, new CertStatus({ revoked: new RevokedInfo({ revocationTime: at('2051-01-01T00:00:00Z') }) })],
    ];
    for (const [ours, theirs] of statuses) {
      const certId = certIdDer(HASH_ALGORITHMS.sha1, nameHash, keyHash, serial);
      const tbs = responseData(keyHash, thisUpdate, [singleResponse(certId, ours, thisUpdate, nextUpdate)]);
      const der = basicResponse(tbs, SIGNATURE);
      const library = new ResponseData({
        responderID: new ResponderID({ byKey: new OctetString(keyHash) }),
        producedAt: thisUpdate,
        responses: [new SingleResponse({
          certID: new CertID({ hashAlgorithm: AsnConvert.parse(HASH_ALGORITHMS.sha1, AlgorithmIdentifier), issuerNameHash: new OctetString(nameHash), issuerKeyHash: new OctetString(keyHash), serialNumber: ab(serial) }),
          certStatus: theirs, thisUpdate, nextUpdate,
        })],
      });
      expect(Buffer.from(AsnConvert.serialize(library)).equals(tbs), ours.status).to.equal(true);
      const basic = new BasicOCSPResponse({ tbsResponseData: library, signatureAlgorithm: AsnConvert.parse(SIGNATURE.algorithm, AlgorithmIdentifier), signature: ab(SIGNATURE.signature) });
      const response = new OCSPResponse({ responseStatus: OCSPResponseStatus.successful, responseBytes: new ResponseBytes({ responseType: id_pkix_ocsp_basic, response: new OctetString(AsnConvert.serialize(basic)) }) });
      expect(Buffer.from(AsnConvert.serialize(response)).equals(der)).to.equal(true);
    }
    expect(Buffer.from(AsnConvert.serialize(new OCSPResponse({ responseStatus: OCSPResponseStatus.unauthorized }))).equals(ocspErrorResponse('unauthorized'))).to.equal(true);
  });

  it('a response from a delegated responder (its certificate in certs, ResponderID its key) is byte-identical to @peculiar/asn1-ocsp', async () => {
    const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
    const keys = await webcrypto.subtle.generateKey(algorithm, false, ['sign', 'verify']);
    const responderCertificate = Buffer.from((await x509.X509CertificateGenerator.createSelfSigned({ name: 'CN=responder', keys, signingAlgorithm: algorithm }, webcrypto as Crypto)).rawData);
    const responderKeyHash = randomBytes(20);
    const certId = certIdDer(HASH_ALGORITHMS.sha256, randomBytes(32), randomBytes(32), randomBytes(16));
    const thisUpdate = at('2026-11-23T10:00:00Z');
    const tbs = responseData(responderKeyHash, thisUpdate, [singleResponse(certId, { status: 'good' }, thisUpdate, at('2026-11-27T10:00:00Z'))]);
    const der = basicResponse(tbs, SIGNATURE, [responderCertificate]);
    const basic = new BasicOCSPResponse({
      tbsResponseData: AsnConvert.parse(tbs, ResponseData),
      signatureAlgorithm: AsnConvert.parse(SIGNATURE.algorithm, AlgorithmIdentifier),
      signature: ab(SIGNATURE.signature),
      certs: [AsnConvert.parse(responderCertificate, Certificate)],
    });
    expect(Buffer.from(basic.tbsResponseData.responderID.byKey!.buffer).equals(responderKeyHash)).to.equal(true);
    const response = new OCSPResponse({ responseStatus: OCSPResponseStatus.successful, responseBytes: new ResponseBytes({ responseType: id_pkix_ocsp_basic, response: new OctetString(AsnConvert.serialize(basic)) }) });
    expect(Buffer.from(AsnConvert.serialize(response)).equals(der)).to.equal(true);
  });

  it('the fast path finds the CertID of a one-certificate request, with or without a nonce, and nothing in anything else', () => {
    const certId = certIdDer(HASH_ALGORITHMS.sha256, randomBytes(32), randomBytes(32), randomBytes(16));
    const parsedId = AsnConvert.parse(certId, CertID);
    const nonce = new Extension({ extnID: '1.3.6.1.5.5.7.48.1.2', extnValue: new OctetString(AsnConvert.serialize(new OctetString(randomBytes(16)))) });
    const request = (list: Request[], extensions?: Extension[]) =>
      Buffer.from(AsnConvert.serialize(new OCSPRequest({ tbsRequest: new TBSRequest({ requestList: list, ...(extensions ? { requestExtensions: extensions } : {}) }) })));
    const plain = request([new Request({ reqCert: parsedId })]);
    const withNonce = request([new Request({ reqCert: parsedId })], [nonce]);
    const two = request([new Request({ reqCert: parsedId }), new Request({ reqCert: parsedId })]);
    expect(certIdOfRequest(plain)?.equals(certId)).to.equal(true);
    expect(certIdOfRequest(withNonce)?.equals(certId)).to.equal(true);
    expect(certIdOfRequest(two)).to.equal(undefined);
    expect(certIdOfRequest(Buffer.concat([plain, Buffer.from([0])]))).to.equal(undefined);
    for (let length = 0; length < plain.length; length += 1) expect(certIdOfRequest(plain.subarray(0, length))).to.equal(undefined);
    for (let i = 0; i < 2000; i += 1) certIdOfRequest(randomBytes(1 + (i % 200)));
  });

  it('a CRL is byte-identical to @peculiar/asn1-x509: entries with and without reason, 17-byte serials, UTCTime and GeneralizedTime', async () => {
    const writer = new CrlEntryWriter();
    const entries: Array<[string, number, number]> = [];
    for (let i = 0; i < 3000; i += 1) {
      const serial = randomBytes(16);
      serial[0] = i % 3 === 0 ? serial[0]! | 0x80 : (serial[0]! & 0x7f) || 1;
      const seconds = i === 7 ? Date.parse('2051-06-01T00:00:00Z') / 1000 : 1_790_000_000 + (i >> 4);
      entries.push([serial.toString('hex'), seconds, [0, 1, 3, 4, 5, 9][i % 6]!]);
    }
    for (const [serial, seconds, reason] of entries) writer.add(serial, seconds, reason);
    const issuer = AsnConvert.serialize(new Name([]));
    const aki = { type: '2.5.29.35', critical: false, value: Buffer.from('30168014' + '11'.repeat(20), 'hex') };
    const fields = { signatureAlgorithm: SIGNATURE.algorithm, issuerName: Buffer.from(issuer), authorityKeyIdentifier: aki, thisUpdate: at('2026-11-23T10:00:00Z'), nextUpdate: at('2026-11-24T10:00:00Z'), number: 1_795_000_000_123n };
    const tbs = encodeTbsCertList(fields, writer.finish(), writer.length);
    const der = encodeCrl(tbs, SIGNATURE);

    const library = new TBSCertList({
      version: Version.v2,
      signature: AsnConvert.parse(SIGNATURE.algorithm, AlgorithmIdentifier),
      issuer: new Name([]),
      thisUpdate: new Time(fields.thisUpdate),
      nextUpdate: new Time(fields.nextUpdate),
      revokedCertificates: entries.map(([serial, seconds, reason]) => {
        const bytes = Buffer.from(serial, 'hex');
        return new RevokedCertificate({
          userCertificate: ab(bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes),
          revocationDate: new Time(new Date(seconds * 1000)),
          ...(reason ? { crlEntryExtensions: [new Extension({ extnID: '2.5.29.21', extnValue: new OctetString(AsnConvert.serialize(new CRLReason(reason))) })] } : {}),
        });
      }),
      crlExtensions: [
        new Extension({ extnID: aki.type, extnValue: new OctetString(aki.value) }),
        new Extension({ extnID: '2.5.29.20', extnValue: new OctetString(Buffer.from('020601a1ee565e7b', 'hex')) }),
      ],
    });
    expect(Buffer.from(AsnConvert.serialize(library)).equals(tbs)).to.equal(true);
    const list = new CertificateList({ tbsCertList: library, signatureAlgorithm: AsnConvert.parse(SIGNATURE.algorithm, AlgorithmIdentifier), signature: ab(SIGNATURE.signature) });
    expect(Buffer.from(AsnConvert.serialize(list)).equals(der)).to.equal(true);
    const signedInPlace = await encodeSignedCrl(fields, writer.finish(), writer.length, async (signedTbs) => {
      expect(signedTbs.equals(tbs)).to.equal(true);
      return SIGNATURE;
    });
    expect(signedInPlace.equals(der), 'written in one buffer').to.equal(true);

    const empty = new CrlEntryWriter();
    const emptyTbs = encodeTbsCertList(fields, empty.finish(), empty.length);
    delete library.revokedCertificates;
    expect(Buffer.from(AsnConvert.serialize(library)).equals(emptyTbs), 'no entries: revokedCertificates absent').to.equal(true);
  });

  describe('CRL numbers and contents', () => {
    let ca: MemoryCa;
    before(async () => {
      ca = await createMemoryCa();
    });
    after(async () => ca?.close());

    it('rise with every CRL, across a restored older database, and expired certificates leave after the grace', async () => {
      const operational = ca.hierarchy.operational;
      const first = (await new CrlPublisher(ca.store, () => new Date()).publish(operational, { force: true }))!;
      const second = (await new CrlPublisher(ca.store, () => new Date()).publish(operational, { force: true }))!;
      expect(second.record.number > first.record.number).to.equal(true);
      // A database restored from a dump made before both CRLs: the number comes from the time and still rises.
      await rawConnection(ca.store)('crls').where({ issuer_id: operational.id }).delete();
      const third = (await new CrlPublisher(ca.store, () => new Date()).publish(operational, { force: true }))!;
      expect(third.record.number > second.record.number).to.equal(true);
      // Not due: no revocation since and not past half its validity.
      expect(await new CrlPublisher(ca.store, () => new Date()).publish(operational)).to.equal(undefined);
    });

    it('list revoked certificates until they have been expired longer than the grace', async () => {
      const operational = ca.hierarchy.operational;
      const day = 24 * 3600 * 1000;
      const now = Date.now();
      const row = (serial: string, notAfter: number) => ({
        serial, kind: 'operational', issuer_id: operational.id, subject: 'CN=x', der: Buffer.from([0]), sha256: serial.repeat(4), key_sha256: serial.repeat(4),
        not_before: new Date(now - 30 * day), not_after: new Date(notAfter), revoked_at: new Date(now - 20 * day), revocation_reason: 1, created_at: new Date(now - 30 * day),
      });
      await rawConnection(ca.store)('certificates').insert([row('7a'.repeat(16), now + day), row('7b'.repeat(16), now - 2 * day), row('7c'.repeat(16), now - 10 * day)]);
      const published = (await new CrlPublisher(ca.store, () => new Date(), { validityMs: day, expiredGraceMs: 7 * day, shards: {} }).publish(operational, { force: true }))!;
      const listed = AsnConvert.parse(published.der, CertificateList).tbsCertList.revokedCertificates!.map((r) => Buffer.from(r.userCertificate).toString('hex'));
      expect(listed).to.deep.equal(['7a'.repeat(16), '7b'.repeat(16)]);
      expect(published.record.nextUpdate.getTime() - published.record.thisUpdate.getTime()).to.equal(day);
    });

    it('are served as published once a round asked for while another runs has ended (crl publish against a running server)', async () => {
      // CRL rounds only: the OCSP responders (and so the audit log) are never started here.
      const publication = new Publication(ca.store, ca.hierarchy, { provider: ca.provider, crypto: ca.crypto, audit: undefined as unknown as AuditLog }, () => new Date(), createLogger('silent'));
      const operational = ca.hierarchy.operational;
      const inFlight = publication.crlRound(); // the 10 s timer's, reading the CRLs as they were
      const published = (await new CrlPublisher(ca.store, () => new Date()).publish(operational, { force: true }))!;
      await publication.crlRound(); // what `devid-ca crl publish` asks of the server after writing its CRLs
      expect(publication.crl('operational')?.record.number).to.equal(published.record.number);
      await inFlight;
    });
  });
});
