import { AsnConvert } from '@peculiar/asn1-schema';
import { BasicConstraints, Certificate, ExtendedKeyUsage, SubjectAlternativeName, Version } from '@peculiar/asn1-x509';
import { OID } from '../../../ca/asn1.ts';
import type { CheckFailure } from '../format.ts';

/** TCG OIDs WebAuthn 8.3.1 names (TCG EK Credential Profile 3.1.2 and 3.2.9). */
export const TCG_OID = {
  /** tcg-kp-AIKCertificate: the extended key usage of an attestation key's certificate. */
  akCertificate: '2.23.133.8.3',
  tpmManufacturer: '2.23.133.2.1',
  tpmModel: '2.23.133.2.2',
  tpmVersion: '2.23.133.2.3',
} as const;

const fail = (rule: string): CheckFailure => ({ check: 'check 1 (AK certificate)', detail: `WebAuthn 8.3.1: ${rule}` });

/**
 * WebAuthn 8.3.1's requirements of a TPM attestation key's certificate, for
 * an AK certificate from another manufacturer (ours are birth certificates
 * of our own profile and exempt): version 3; an empty subject; a critical
 * subjectAltName (RFC 5280 4.2.1.6 when the subject is empty) with the TPM's
 * manufacturer, model and version in a directoryName (TCG EK Credential
 * Profile 3.2.9) and, for this CA, the device in a HardwareModuleName or a
 * PermanentIdentifier; an extended key usage with tcg-kp-AIKCertificate;
 * basicConstraints with CA false. AIA and CRL distribution points are
 * optional there. Undefined when every rule holds.
 */
export function akCertificateProblem(der: Buffer): CheckFailure | undefined {
  let certificate: Certificate;
  try {
    certificate = AsnConvert.parse(der, Certificate);
  } catch {
    return fail('x5c[0] is not a DER certificate');
  }
  const tbs = certificate.tbsCertificate;
  if (tbs.version !== Version.v3) return fail(`the AK certificate must be version 3, not ${tbs.version + 1}`);
  if (tbs.subject.length !== 0) return fail('the AK certificate\'s subject must be empty');
  const extension = (oid: string) => tbs.extensions?.find((e) => e.extnID === oid);
  const parsed = <T>(oid: string, type: new () => T): T | undefined => {
    const found = extension(oid);
    if (!found) return undefined;
    try {
      return AsnConvert.parse(found.extnValue, type);
    } catch {
      return undefined;
    }
  };

  const sanExtension = extension(OID.subjectAltName);
  if (!sanExtension) return fail('the AK certificate must have a subjectAltName');
  if (!sanExtension.critical) return fail('the subjectAltName must be critical (the subject is empty)');
  const names = parsed(OID.subjectAltName, SubjectAlternativeName);
  if (!names) return fail('the subjectAltName is not DER GeneralNames');
  const attributes = new Set(names.flatMap((n) => n.directoryName?.flatMap((rdn) => [...rdn].map((a) => a.type)) ?? []));
  const missing = [['TPM manufacturer', TCG_OID.tpmManufacturer], ['TPM model', TCG_OID.tpmModel], ['TPM version', TCG_OID.tpmVersion]]
    .filter(([, oid]) => !attributes.has(oid!)).map(([what, oid]) => `${what} (${oid})`);
  if (missing.length > 0) return fail(`the subjectAltName's directoryName lacks the ${missing.join(', ')}`);
  if (!names.some((n) => n.otherName?.typeId === OID.hardwareModuleName || n.otherName?.typeId === OID.permanentIdentifier)) {
    return fail('the subjectAltName must name the device in a HardwareModuleName or a PermanentIdentifier');
  }

  if (!extension(OID.extKeyUsage)) return fail(`the AK certificate must have an extended key usage with tcg-kp-AIKCertificate (${TCG_OID.akCertificate})`);
  const purposes = parsed(OID.extKeyUsage, ExtendedKeyUsage);
  if (!purposes?.includes(TCG_OID.akCertificate)) return fail(`the extended key usage must contain tcg-kp-AIKCertificate (${TCG_OID.akCertificate})`);
  if (!extension(OID.basicConstraints)) return fail('the AK certificate must have basicConstraints with CA false');
  const constraints = parsed(OID.basicConstraints, BasicConstraints);
  if (!constraints || constraints.cA) return fail('basicConstraints must have CA false');
  return undefined;
}
