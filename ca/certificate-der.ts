import { bitString, element, explicit, extension, sequence, time, unsignedInteger } from './der.ts';
import type { Issuer } from './issuer.ts';
import type { Profile } from './profiles.ts';
import type { TbsSignature } from './signer.ts';

const VERSION_3 = explicit(0, unsignedInteger(Buffer.from([2])));

/**
 * TBSCertificate (RFC 5280 4.1) from a profile: the issuer's constant parts
 * (name, algorithm, AKI/AIA/CDP) were encoded once; only the serial,
 * validity, subject, key and per-device extensions are written per request.
 * Byte-identical to what @peculiar/x509 builds from the same fields (tested).
 */
export function encodeTbsCertificate(issuer: Issuer, profile: Profile, serial: Buffer): Buffer {
  return sequence(
    VERSION_3,
    unsignedInteger(serial),
    issuer.signatureAlgorithm,
    issuer.subjectDer,
    sequence(time(profile.notBefore), time(profile.notAfter)),
    profile.subject,
    profile.spki,
    explicit(3, sequence(...profile.extensions.map((e) => extension(e.type, e.critical, e.value)))),
  );
}

/** Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING } */
export function encodeCertificate(tbs: Buffer, signed: TbsSignature): Buffer {
  return sequence(tbs, signed.algorithm, bitString(signed.signature));
}

/**
 * The SubjectPublicKeyInfo of a certificate this CA issued (read from our own
 * DER, which the caller matched byte for byte against a stored record):
 * TBSCertificate is [0] version, serial, signature, issuer, validity,
 * subject, subjectPublicKeyInfo.
 */
export function spkiOfIssuedCertificate(der: Uint8Array): Buffer {
  const tbs = element(element(der).contents);
  let offset = 0;
  for (let field = 0; field < 6; field += 1) offset = element(tbs.contents, offset).end;
  const spki = element(tbs.contents, offset);
  return Buffer.from(tbs.contents.subarray(offset, spki.end));
}
