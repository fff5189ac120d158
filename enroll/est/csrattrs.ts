import * as asn1js from 'asn1js';
import { wrap } from './cms.ts';

export const CHALLENGE_PASSWORD = '1.2.840.113549.1.9.7';
const EC_PUBLIC_KEY = '1.2.840.10045.2.1';
const SECP256R1 = '1.2.840.10045.3.1.7';
const SECP384R1 = '1.3.132.0.34';
const ED25519 = '1.3.101.112';
const RSA_ENCRYPTION = '1.2.840.113549.1.1.1';

const oid = (value: string) => new asn1js.ObjectIdentifier({ value });

/**
 * GET csrattrs (RFC 7030 4.5.2): CsrAttrs ::= SEQUENCE OF AttrOrOID.
 * challengePassword: the CSR carries the channel binding there. The key
 * types a device key may have (pki/public-key.ts): an ecPublicKey attribute
 * naming the curves, as RFC 7030's example, then Ed25519 and RSA by their
 * algorithm OIDs. The CSR's names follow the device's serial, not a
 * template (docs/device-makers/est.md).
 */
export function csrAttrs(): string {
  const sequence = new asn1js.Sequence({
    value: [
      oid(CHALLENGE_PASSWORD),
      new asn1js.Sequence({ value: [oid(EC_PUBLIC_KEY), new asn1js.Set({ value: [oid(SECP384R1), oid(SECP256R1)] })] }),
      oid(ED25519),
      oid(RSA_ENCRYPTION),
    ],
  });
  return wrap(Buffer.from(sequence.toBER()).toString('base64'));
}
