import { AsnConvert } from '@peculiar/asn1-schema';
import { Extensions, SubjectAlternativeName, id_ce_subjectAltName } from '@peculiar/asn1-x509';
import { OID } from '../../ca/asn1.ts';
import { deviceNameDer, type DeviceName } from '../../ca/profiles.ts';
import { permanentIdentifierOf } from '../../pki/attestation/birth-chain.ts';
import { verifyCsr, type VerifiedCsr } from '../../pki/csr.ts';
import { DomainError } from '../../errors/domain-error.ts';
import { enrollmentError } from './errors.ts';

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** Extensions a CSR may request without effect (the profile decides them), as ACME libraries add them: no names. */
const IGNORED_REQUESTS = new Set<string>([OID.keyUsage, OID.extKeyUsage, OID.basicConstraints, OID.subjectKeyIdentifier]);

const badCsr = enrollmentError.badCsr;

/**
 * The CSR of an operational certificate: it verifies, carries the key the
 * device attested (`attestedSpki`), and names at most the device. Every
 * refusal is a badCSR domain error (a refused key too). `frontEndAttributes`
 * are attribute types the front end itself has checked (EST: the
 * challengePassword that carries the channel binding).
 */
export function checkCsr(text: string, attestedSpki: Buffer, serial: string, frontEndAttributes: readonly string[] = [], name?: DeviceName): VerifiedCsr {
  try {
    const csr = verifyCsr(text);
    if (!csr.publicKey.spki.equals(attestedSpki)) throw badCsr('the CSR key is not the key the device attested for this order');
    checkCsrNames(csr, serial, frontEndAttributes, name);
    return csr;
  } catch (err) {
    if (err instanceof DomainError && err.kind !== 'badCSR') throw badCsr(err.detail);
    throw err;
  }
}

/** The device's name as the refusals state it. */
function describe(serial: string, name: DeviceName | undefined): string {
  if (name?.type === 'hardware-module') return `HardwareModuleName ${serial}/${name.hwType}`;
  return `PermanentIdentifier ${serial}${name?.assigner ? ` with assigner ${name.assigner}` : ''}`;
}

/**
 * docs/reference/certificates.md: the CA sets subject and SANs from the order; a CSR may
 * carry only CN=<serial> and/or the device's name as the order named it
 * (its otherName GeneralName: draft-ietf-acme-device-attest-09 asks for an
 * octet-for-octet match). Key usage requests are ignored (the profile sets
 * them); anything else is badCSR.
 */
function checkCsrNames(csr: VerifiedCsr, serial: string, frontEndAttributes: readonly string[], deviceName: DeviceName | undefined): void {
  const info = csr.request.certificationRequestInfo;
  for (const rdn of info.subject) {
    for (const attribute of rdn) {
      const value = attribute.value.utf8String ?? attribute.value.printableString;
      if (attribute.type !== OID.commonName || value !== serial) throw badCsr(`the CSR subject may only be CN=${serial}`);
    }
  }
  for (const attribute of info.attributes) {
    if (frontEndAttributes.includes(attribute.type)) continue;
    if (attribute.type !== EXTENSION_REQUEST || attribute.values.length !== 1) throw badCsr('the CSR may carry no attribute but an extension request');
    const extensions = parsed(attribute.values[0]!, Extensions, 'the extension request is not a DER Extensions');
    for (const extension of extensions) {
      if (IGNORED_REQUESTS.has(extension.extnID)) continue;
      if (extension.extnID !== id_ce_subjectAltName) throw badCsr(`the CSR may not request extension ${extension.extnID}`);
      const names = parsed(extension.extnValue.buffer, SubjectAlternativeName, 'the requested subjectAltName is not DER GeneralNames');
      // Each name re-encoded from a DER request: equal bytes are the same otherName, same type, same value, same assigner or hwType.
      const expected = deviceNameDer(serial, deviceName);
      for (const name of names) {
        if (!name.otherName || !Buffer.from(AsnConvert.serialize(name)).equals(expected)) throw badCsr(`the CSR subjectAltName may only be the ${describe(serial, deviceName)}`);
      }
    }
  }
}

/**
 * The serial a CSR names (its CN, else its requested PermanentIdentifier),
 * or undefined: a gateway's CSR says which device it is for
 * (docs/operators/gateways.md). checkCsr still checks every name.
 */
export function namedSerial(csr: VerifiedCsr): string | undefined {
  const info = csr.request.certificationRequestInfo;
  for (const rdn of info.subject) {
    for (const attribute of rdn) {
      if (attribute.type === OID.commonName) return attribute.value.utf8String ?? attribute.value.printableString;
    }
  }
  for (const attribute of info.attributes) {
    if (attribute.type !== EXTENSION_REQUEST || attribute.values.length !== 1) continue;
    try {
      for (const extension of AsnConvert.parse(attribute.values[0]!, Extensions)) {
        if (extension.extnID !== id_ce_subjectAltName) continue;
        for (const name of AsnConvert.parse(extension.extnValue.buffer, SubjectAlternativeName)) {
          if (name.otherName?.typeId === OID.permanentIdentifier) return permanentIdentifierOf(name.otherName.value);
        }
      }
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** An attribute or extension value the CSR's signature covers but nothing parsed yet: malformed is badCSR, not a fault. */
function parsed<T>(value: BufferSource, type: new () => T, what: string): T {
  try {
    return AsnConvert.parse(value, type);
  } catch {
    throw badCsr(what);
  }
}
