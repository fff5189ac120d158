import * as x509 from '@peculiar/x509';
import type { NewOcspResponder } from '../store/ocsp-responder-store.ts';
import { OID } from './asn1.ts';
import { name, wholeSeconds } from './der.ts';
import { publicKeyOf, type KeyCeremony } from './hierarchy.ts';
import type { Issuer } from './issuer.ts';
import { BACKDATE_MS, DAY_MS } from './profiles.ts';
import { randomSerial } from './serial.ts';

/** A responder certificate is short-lived (it carries id-pkix-ocsp-nocheck, so nothing can revoke it). */
export const OCSP_RESPONDER_LIFETIME_MS = 30 * DAY_MS;

/** CKA_LABEL of a responder key, for people: `devid-ocsp-operational-2-3`; the recorded CKA_ID finds it. */
export function responderKeyLabel(issuer: Issuer, number: number): string {
  return `devid-ocsp-${issuer.slug}-${number}`;
}

/**
 * RFC 6960 4.2.2.2: an end-entity certificate from the issuing CA with
 * digitalSignature (critical), id-kp-OCSPSigning, and id-pkix-ocsp-nocheck
 * (NULL, non-critical): relying parties do not check its status.
 */
export async function responderExtensions(issuer: Issuer, publicKey: x509.PublicKey, crypto: Crypto): Promise<x509.Extension[]> {
  return [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([OID.ocspSigning], false),
    new x509.Extension(OID.ocspNoCheck, false, new Uint8Array([0x05, 0x00])),
    await x509.SubjectKeyIdentifierExtension.create(publicKey, false, crypto),
    new x509.AuthorityKeyIdentifierExtension(issuer.record.ski.toString('hex'), false),
  ];
}

/** `O=<the CA's O>, CN=<the CA's CN> OCSP Responder`. */
function responderSubject(issuer: Issuer): x509.Name {
  const organization = issuer.certificate.subjectName.getField('O')[0] ?? '';
  const common = `${issuer.certificate.subjectName.getField('CN')[0] ?? issuer.slug} OCSP Responder`;
  return new x509.Name(new Uint8Array(name([[OID.organization, 'utf8', organization], [OID.commonName, 'utf8', common]])));
}

/**
 * A new delegated responder for an online issuing CA: a key generated in
 * the token (same curve as the CA's) and its certificate signed by the CA,
 * valid 30 days (never beyond the CA), notBefore backdated for clock skew.
 * The caller records it in its transaction; the ceremony undoes the key if
 * that does not commit.
 */
export async function createResponder(ceremony: KeyCeremony, crypto: Crypto, issuer: Issuer, number: number, now: Date): Promise<NewOcspResponder> {
  const key = await ceremony.createKey(responderKeyLabel(issuer, number), issuer.key.curve);
  const publicKey = publicKeyOf(key);
  const wanted = wholeSeconds(new Date(now.getTime() + OCSP_RESPONDER_LIFETIME_MS));
  const certificate = await issuer.signCaCertificate({
    serialNumber: randomSerial().toString('hex'),
    subject: responderSubject(issuer),
    publicKey,
    notBefore: wholeSeconds(new Date(now.getTime() - BACKDATE_MS)),
    notAfter: wanted > issuer.notAfter ? issuer.notAfter : wanted,
    extensions: await responderExtensions(issuer, publicKey, crypto),
  });
  return {
    issuerId: issuer.id,
    number,
    serial: certificate.serialNumber,
    der: Buffer.from(certificate.rawData),
    publicKey: key.publicKey.export({ format: 'der', type: 'spki' }),
    keyLabel: key.label,
    keyId: key.id,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    createdAt: now,
  };
}
