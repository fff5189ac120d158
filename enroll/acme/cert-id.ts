import type { Hierarchy } from '../../ca/hierarchy.ts';
import type { CertificateStore } from '../../store/certificate-store.ts';
import type { CertificateRecord } from '../../store/types.ts';
import { acmeProblem } from './problems.ts';

/** The DER INTEGER contents of a serial: positive, so a leading 0x00 when the top bit is set. */
function serialContents(serialHex: string): Buffer {
  const bytes = Buffer.from(serialHex, 'hex');
  return bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
}

/** RFC 9773 4.1: base64url(AKI keyIdentifier) "." base64url(serial DER contents). */
export function certIdOf(issuerSki: Buffer, serialHex: string): string {
  return `${issuerSki.toString('base64url')}.${serialContents(serialHex).toString('base64url')}`;
}

/** The certificate an ARI certID names, or a malformed/404 problem. */
export async function certificateByCertId(certId: unknown, hierarchy: Hierarchy, certificates: Pick<CertificateStore, 'byIssuerAndSerial'>): Promise<CertificateRecord> {
  const match = typeof certId === 'string' ? /^([A-Za-z0-9_-]{1,128})\.([A-Za-z0-9_-]{1,64})$/.exec(certId) : null;
  if (!match) throw acmeProblem.malformed('a certID is base64url(AKI keyIdentifier) "." base64url(serial) (RFC 9773)');
  const ski = Buffer.from(match[1]!, 'base64url');
  let serial = Buffer.from(match[2]!, 'base64url');
  if (serial.length > 1 && serial[0] === 0 && serial[1]! & 0x80) serial = serial.subarray(1);
  const issuer = hierarchy.issuers.find((i) => i.record.ski.equals(ski));
  const certificate = issuer ? await certificates.byIssuerAndSerial(issuer.id, serial.toString('hex')) : undefined;
  if (!certificate) throw acmeProblem.notFound('certificate for this certID');
  return certificate;
}
