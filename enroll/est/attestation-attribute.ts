import * as asn1js from 'asn1js';
import type { CertificationRequest } from '@peculiar/asn1-csr';
import { MAX_ATTESTATION_OBJECT } from '../../pki/attestation/attestation-object.ts';

/** id-aa-attestation (draft-ietf-lamps-csr-attestation): the CSR attribute that carries a device's attestation. */
export const ID_AA_ATTESTATION = '1.2.840.113549.1.9.16.2.59';

/**
 * The AttestationStatement type of this CA's attestation objects (docs/device-makers/est.md):
 * the CBOR attestation object of draft-ietf-acme-device-attest (any format
 * the device's class accepts), in the project's arc.
 */
export const ATTESTATION_OBJECT_TYPE = '1.3.6.1.4.1.99999.20.3';

/**
 * The attestation object a CSR carries, undefined when it carries none, or
 * why it is malformed: one id-aa-attestation attribute with one value,
 * AttestationStatement ::= SEQUENCE { type OBJECT IDENTIFIER, stmt OCTET STRING },
 * of type ATTESTATION_OBJECT_TYPE, DER with nothing after it.
 */
export function attestationOf(request: CertificationRequest): Buffer | { problem: string } | undefined {
  const attributes = request.certificationRequestInfo.attributes.filter((a) => a.type === ID_AA_ATTESTATION);
  if (attributes.length === 0) return undefined;
  if (attributes.length > 1 || attributes[0]!.values.length !== 1) return { problem: 'the CSR must carry exactly one id-aa-attestation value' };
  const value: unknown = attributes[0]!.values[0];
  const shape = { problem: 'id-aa-attestation must be an AttestationStatement: SEQUENCE { type OBJECT IDENTIFIER, stmt OCTET STRING }' };
  // The CSR parser hands a NULL value over as null, not as bytes.
  if (!(value instanceof ArrayBuffer)) return shape;
  const parsed = asn1js.fromBER(value);
  if (parsed.offset !== value.byteLength || !(parsed.result instanceof asn1js.Sequence)) return shape;
  const fields = parsed.result.valueBlock.value;
  const [type, stmt] = fields;
  if (fields.length !== 2 || !(type instanceof asn1js.ObjectIdentifier) || !(stmt instanceof asn1js.OctetString) || stmt.idBlock.isConstructed) return shape;
  if (type.valueBlock.toString() !== ATTESTATION_OBJECT_TYPE) return { problem: `the AttestationStatement type must be ${ATTESTATION_OBJECT_TYPE} (an attestation object), not ${type.valueBlock.toString().slice(0, 64)}` };
  const attObj = Buffer.from(stmt.valueBlock.valueHexView);
  if (attObj.length === 0 || attObj.length > MAX_ATTESTATION_OBJECT) return { problem: `the attestation object must be 1 to ${MAX_ATTESTATION_OBJECT} bytes` };
  return attObj;
}
