import { CertificateChoices, CertificateSet, ContentInfo, EncapsulatedContentInfo, SignedData, id_data, id_signedData } from '@peculiar/asn1-cms';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';

/**
 * A certs-only CMS SignedData (RFC 7030 4.1.3 and 4.2.3, RFC 5652 5.1): no
 * signers, no digest algorithms, no content, only the certificates, which
 * DER's SET OF orders by their encodings. Base64 with line breaks every 76
 * characters, as RFC 2045 would have it (EST clients accept either).
 */
export function certsOnly(certificates: readonly Uint8Array[]): string {
  const sorted = [...certificates].map((der) => Buffer.from(der)).sort(Buffer.compare);
  const signedData = new SignedData({
    version: 1,
    encapContentInfo: new EncapsulatedContentInfo({ eContentType: id_data }),
    certificates: new CertificateSet(sorted.map((der) => new CertificateChoices({ certificate: AsnConvert.parse(der, Certificate) }))),
  });
  const info = new ContentInfo({ contentType: id_signedData, content: AsnConvert.serialize(signedData) });
  return wrap(Buffer.from(AsnConvert.serialize(info)).toString('base64'));
}

/** Base64 in lines of 76 characters, each ended by CRLF. */
export function wrap(base64: string): string {
  return `${base64.match(/.{1,76}/g)!.join('\r\n')}\r\n`;
}
