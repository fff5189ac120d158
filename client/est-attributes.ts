import * as asn1js from 'asn1js';

/** id-aa-attestation (draft-ietf-lamps-csr-attestation) and this CA's AttestationStatement type (docs/device-makers/est.md). */
export const ID_AA_ATTESTATION = '1.2.840.113549.1.9.16.2.59';
export const ATTESTATION_OBJECT_TYPE = '1.3.6.1.4.1.99999.20.3';

/** The value of the CSR's id-aa-attestation attribute: AttestationStatement ::= SEQUENCE { type OID, stmt OCTET STRING attObj }. */
export function attestationStatement(attObj: Buffer): Buffer {
  const statement = new asn1js.Sequence({
    value: [new asn1js.ObjectIdentifier({ value: ATTESTATION_OBJECT_TYPE }), new asn1js.OctetString({ valueHex: new Uint8Array(attObj) })],
  });
  return Buffer.from(statement.toBER());
}
