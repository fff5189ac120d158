import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate } from '@peculiar/asn1-x509';
import { checkCertificate, isKeyRefusal } from '../certificate-key.ts';
import type { CheckedKey } from '../public-key.ts';
import { AttestationError } from './attestation-object.ts';
import { MAX_BIRTH_CHAIN } from './birth-chain.ts';

const MAX_CERTIFICATE = 4096;

/** x5c of a format whose leaf a manufacturer's attestation service made for the attested key (apple, android-key). */
export interface FreshLeafChain {
  chain: Buffer[];
  /** Every certificate, parsed; leaf first. */
  certificates: Certificate[];
  /** The leaf's key: the attested key. */
  key: CheckedKey;
}

/** x5c checked: 1 to 5 certificates (Android's remotely provisioned chains are five long), each parsed, the leaf's key accepted. */
export function parseFreshLeafChain(x5c: unknown): FreshLeafChain {
  if (!Array.isArray(x5c) || x5c.length < 1 || x5c.length > MAX_BIRTH_CHAIN || !x5c.every((c) => c instanceof Uint8Array && c.length > 0 && c.length <= MAX_CERTIFICATE)) {
    throw new AttestationError('attestation object', `attStmt.x5c must hold 1 to ${MAX_BIRTH_CHAIN} certificates of at most ${MAX_CERTIFICATE} bytes`);
  }
  const chain = x5c.map((c: Uint8Array) => Buffer.from(c));
  const certificates = chain.map((der, i) => {
    try {
      return AsnConvert.parse(der, Certificate);
    } catch {
      throw new AttestationError('attStmt.x5c', `x5c[${i}] is not an X.509 certificate`);
    }
  });
  let key: CheckedKey;
  try {
    key = checkCertificate(chain[0]!).key;
  } catch (err) {
    throw new AttestationError('attStmt.x5c', isKeyRefusal(err) ? `the key of x5c[0] is refused: ${err.detail}` : 'x5c[0] is not an X.509 certificate');
  }
  return { chain, certificates, key };
}

/** A certificate serial as lowercase hex. */
export const serialHexOf = (certificate: Certificate) => Buffer.from(certificate.tbsCertificate.serialNumber).toString('hex');
