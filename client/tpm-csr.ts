import { AsnConvert } from '@peculiar/asn1-schema';
import { Attributes, CertificationRequest, CertificationRequestInfo } from '@peculiar/asn1-csr';
import { AlgorithmIdentifier, AttributeTypeAndValue, AttributeValue, Name, RelativeDistinguishedName, SubjectPublicKeyInfo } from '@peculiar/asn1-x509';

const ECDSA_WITH_SHA256 = '1.2.840.10045.4.3.2';

/**
 * A PKCS#10 request (DER) for CN=<subject> and a key in a TPM, signed by
 * the TPM: RFC 2986 signs the CertificationRequestInfo DER, which `sign`
 * turns into a DER ECDSA signature over its SHA-256 (TPM2_Hash + TPM2_Sign
 * with the ticket for an attestation key; TPM2_Sign of the digest for an
 * operational key).
 */
export function tpmCsr(subject: string, spkiDer: Buffer, sign: (tbs: Buffer) => Buffer): Buffer {
  const name = new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: '2.5.4.3', value: new AttributeValue({ utf8String: subject }) })])]);
  const info = new CertificationRequestInfo({ version: 0, subject: name, subjectPKInfo: AsnConvert.parse(spkiDer, SubjectPublicKeyInfo), attributes: new Attributes() });
  const tbs = Buffer.from(AsnConvert.serialize(info));
  const request = new CertificationRequest({ certificationRequestInfo: info, signatureAlgorithm: new AlgorithmIdentifier({ algorithm: ECDSA_WITH_SHA256 }), signature: new Uint8Array(sign(tbs)).buffer });
  return Buffer.from(AsnConvert.serialize(request));
}
