import * as asn1js from 'asn1js';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as asn1X509 from '@peculiar/asn1-x509';
import * as x509 from '@peculiar/x509';

/** OIDs from the RFCs the profiles cite. */
export const OID = {
  serialNumber: '2.5.4.5',
  organization: '2.5.4.10',
  commonName: '2.5.4.3',
  subjectAltName: '2.5.29.17',
  hardwareModuleName: '1.3.6.1.5.5.7.8.4', // RFC 4108
  permanentIdentifier: '1.3.6.1.5.5.7.8.3', // RFC 4043
  clientAuth: '1.3.6.1.5.5.7.3.2',
  serverAuth: '1.3.6.1.5.5.7.3.1',
} as const;

type StringType = 'printable' | 'utf8';

/** A distinguished name in the given attribute order, with explicit string types. */
export function buildName(attributes: ReadonlyArray<[oid: string, type: StringType, value: string]>): x509.Name {
  const name = new asn1X509.Name(
    attributes.map(([type, kind, value]) =>
      new asn1X509.RelativeDistinguishedName([
        new asn1X509.AttributeTypeAndValue({
          type,
          value: new asn1X509.AttributeValue(kind === 'printable' ? { printableString: value } : { utf8String: value }),
        }),
      ]),
    ),
  );
  return new x509.Name(AsnConvert.serialize(name));
}

/** RFC 4108 HardwareModuleName ::= SEQUENCE { hwType OID, hwSerialNum OCTET STRING } */
export function hardwareModuleName(hwType: string, hwSerialNum: Uint8Array): asn1X509.GeneralName {
  const value = new asn1js.Sequence({
    value: [new asn1js.ObjectIdentifier({ value: hwType }), new asn1js.OctetString({ valueHex: hwSerialNum })],
  }).toBER();
  return new asn1X509.GeneralName({ otherName: new asn1X509.OtherName({ typeId: OID.hardwareModuleName, value }) });
}

/** RFC 4043 PermanentIdentifier ::= SEQUENCE { identifierValue UTF8String OPTIONAL, assigner OID OPTIONAL } */
export function permanentIdentifier(identifierValue: string): asn1X509.GeneralName {
  const value = new asn1js.Sequence({ value: [new asn1js.Utf8String({ value: identifierValue })] }).toBER();
  return new asn1X509.GeneralName({ otherName: new asn1X509.OtherName({ typeId: OID.permanentIdentifier, value }) });
}

export function uriName(uri: string): asn1X509.GeneralName {
  return new asn1X509.GeneralName({ uniformResourceIdentifier: uri });
}

export function dnsOrIpName(host: string): asn1X509.GeneralName {
  const ip = /^[0-9.]+$/.test(host) || host.includes(':');
  return new asn1X509.GeneralName(ip ? { iPAddress: host } : { dNSName: host });
}

export function subjectAltName(names: asn1X509.GeneralName[], critical = false): x509.Extension {
  return new x509.Extension(OID.subjectAltName, critical, AsnConvert.serialize(new asn1X509.SubjectAlternativeName(names)));
}

/** SPEC section 2: SEQUENCE { predecessor OCTET STRING } carrying the SHA-256 of the predecessor's DER. */
export function predecessorExtension(oid: string, predecessorSha256: Buffer): x509.Extension {
  const value = new asn1js.Sequence({ value: [new asn1js.OctetString({ valueHex: predecessorSha256 })] }).toBER();
  return new x509.Extension(oid, false, value);
}
