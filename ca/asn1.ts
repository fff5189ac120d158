import { explicit, octetString, oid, sequence, tlv, utf8String } from './der.ts';

/** OIDs from the RFCs the profiles cite. */
export const OID = {
  serialNumber: '2.5.4.5',
  organization: '2.5.4.10',
  organizationalUnit: '2.5.4.11',
  commonName: '2.5.4.3',
  subjectAltName: '2.5.29.17',
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  basicConstraints: '2.5.29.19',
  extKeyUsage: '2.5.29.37',
  authorityKeyIdentifier: '2.5.29.35',
  crlDistributionPoints: '2.5.29.31',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
  hardwareModuleName: '1.3.6.1.5.5.7.8.4', // RFC 4108
  permanentIdentifier: '1.3.6.1.5.5.7.8.3', // RFC 4043
  clientAuth: '1.3.6.1.5.5.7.3.2',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  codeSigning: '1.3.6.1.5.5.7.3.3', // RFC 5280 4.2.1.12 id-kp-codeSigning
  ocspSigning: '1.3.6.1.5.5.7.3.9', // RFC 6960 4.2.2.2
  ocspNoCheck: '1.3.6.1.5.5.7.48.1.5', // RFC 6960 4.2.2.2.1
  certificatePolicies: '2.5.29.32',
} as const;

/**
 * The assurance policies of operational certificates (docs/reference/certificates.md),
 * in the project's arc 1.3.6.1.4.1.99999: `attested`, the device proved its
 * factory key (directly or through a gateway); `mediated`, a gateway vouched
 * for a device without one. Every operational certificate carries exactly one.
 */
export const ASSURANCE_POLICY = {
  attested: '1.3.6.1.4.1.99999.20.1',
  mediated: '1.3.6.1.4.1.99999.20.2',
} as const;

/** GeneralName otherName: [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT ANY }. */
function otherName(typeId: string, value: Buffer): Buffer {
  return tlv(0xa0, oid(typeId), explicit(0, value));
}

/** RFC 4108 HardwareModuleName ::= SEQUENCE { hwType OID, hwSerialNum OCTET STRING } */
export function hardwareModuleName(hwType: string, hwSerialNum: Uint8Array): Buffer {
  return otherName(OID.hardwareModuleName, sequence(oid(hwType), octetString(hwSerialNum)));
}

/** RFC 4043 PermanentIdentifier ::= SEQUENCE { identifierValue UTF8String OPTIONAL, assigner OID OPTIONAL } */
export function permanentIdentifier(identifierValue: string, assigner?: string): Buffer {
  const value = utf8String(identifierValue);
  return otherName(OID.permanentIdentifier, assigner === undefined ? sequence(value) : sequence(value, oid(assigner)));
}

/** GeneralName uniformResourceIdentifier: [6] IMPLICIT IA5String. */
export function uriName(uri: string): Buffer {
  return tlv(0x86, Buffer.from(uri, 'latin1'));
}

/** SubjectAltName value: GeneralNames ::= SEQUENCE OF GeneralName. */
export function generalNames(names: Buffer[]): Buffer {
  return sequence(...names);
}

/** docs/reference/certificates.md: SEQUENCE { predecessor OCTET STRING } carrying the SHA-256 of the predecessor's DER. */
export function predecessorValue(predecessorSha256: Buffer): Buffer {
  return sequence(octetString(predecessorSha256));
}
