import * as x509 from '@peculiar/x509';
import type { Store } from '../store/store.ts';
import { StoreConflictError, type CertificateRecord } from '../store/types.ts';
import { sha256Hex } from './digest.ts';
import type { Issuer } from './issuer.ts';
import type { Profile } from './profiles.ts';
import { randomSerial } from './serial.ts';

export interface IssueRequest {
  issuer: Issuer;
  profile: Profile;
  publicKey: x509.PublicKey;
  deviceSerial: string | null;
  predecessorSha256: string | null;
  now: Date;
}

export interface Issued {
  certificate: x509.X509Certificate;
  record: CertificateRecord;
}

/** A profile that would produce a certificate we must not sign. */
export class ProfileLintError extends Error {
  override readonly name = 'ProfileLintError';
}

/** Checks what must hold of every certificate before the HSM is asked to sign it. */
export function lintProfile(issuer: Issuer, profile: Profile): void {
  if (profile.notAfter <= profile.notBefore) throw new ProfileLintError('notAfter is not after notBefore');
  if (profile.notAfter > issuer.notAfter) throw new ProfileLintError(`notAfter is beyond the ${issuer.name} CA's notAfter`);
  if (profile.extensions.length === 0) throw new ProfileLintError('a v3 certificate without extensions');
}

/**
 * The issuance pipeline (after Boulder's issuance/cert.go): lint the profile,
 * pick a serial unused in the database, sign once, record the certificate.
 * Call inside `store.transaction` so the record commits with the caller's
 * other writes (device, audit event).
 */
export async function issueCertificate(store: Store, request: IssueRequest): Promise<Issued> {
  const { issuer, profile } = request;
  lintProfile(issuer, profile);
  let serialNumber = randomSerial();
  while (await store.certificates.serialExists(serialNumber)) serialNumber = randomSerial();
  const certificate = await issuer.sign({
    serialNumber,
    subject: profile.subject,
    publicKey: request.publicKey,
    notBefore: profile.notBefore,
    notAfter: profile.notAfter,
    extensions: profile.extensions,
  });
  const der = Buffer.from(certificate.rawData);
  const record: CertificateRecord = {
    serial: certificate.serialNumber,
    kind: profile.kind,
    issuer: issuer.name,
    deviceSerial: request.deviceSerial,
    subject: certificate.subject,
    der,
    sha256: sha256Hex(der),
    keySha256: sha256Hex(request.publicKey.rawData),
    predecessorSha256: request.predecessorSha256,
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
    revokedAt: null,
    revocationReason: null,
    createdAt: request.now,
  };
  try {
    await store.certificates.insert(record);
  } catch (err) {
    if (err instanceof StoreConflictError) throw new ProfileLintError(`certificate ${record.serial} collides with a recorded one`);
    throw err;
  }
  return { certificate, record };
}
