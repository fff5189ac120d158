import { createHash } from 'node:crypto';
import type { Certificate } from '@peculiar/asn1-x509';
import { AttestationError, type AttestationEnvelope } from '../attestation-object.ts';
import type { AttestationChallenge, AttestationEvidence, AttestationFormat, CheckFailure } from '../format.ts';
import { parseFreshLeafChain, type FreshLeafChain } from '../fresh-leaf-chain.ts';

export const APPLE_FMT = 'apple';

/** Apple Managed Device Attestation extensions of the leaf (as step-ca reads them: the extension value is the datum itself). */
export const APPLE_OID = {
  serialNumber: '1.2.840.113635.100.8.9.1',
  /** The freshness code: SHA-256 of the challenge token the device was given. */
  nonce: '1.2.840.113635.100.8.11.1',
} as const;

/** An apple statement that parsed: the chain, and what its leaf says. */
export interface AppleStatement extends FreshLeafChain {
  serial: string;
  nonce: Buffer;
}

const bad = (detail: string) => new AttestationError('attStmt.x5c', detail);

function extensionValue(leaf: Certificate, oid: string): Buffer {
  const found = (leaf.tbsCertificate.extensions ?? []).filter((e) => e.extnID === oid);
  if (found.length !== 1) throw bad(`x5c[0] must carry one extension ${oid}`);
  return Buffer.from(found[0]!.extnValue.buffer);
}

/** The nonce as the raw 32 bytes, or (as some readers write it) one DER OCTET STRING of them. */
function nonceOf(value: Buffer): Buffer {
  if (value.length === 34 && value[0] === 0x04 && value[1] === 32) return value.subarray(2);
  if (value.length !== 32) throw bad(`the freshness extension ${APPLE_OID.nonce} is not a SHA-256 (32 bytes)`);
  return value;
}

function serialOf(value: Buffer): string {
  const text = value.toString('utf8');
  if (value.length === 0 || value.length > 128 || !Buffer.from(text, 'utf8').equals(value) || !/^[\x21-\x7e]+$/.test(text)) {
    throw bad(`the serial number extension ${APPLE_OID.serialNumber} is not a printable serial of 1 to 128 characters`);
  }
  return text;
}

/** attStmt of fmt "apple" (as step-ca) = {"x5c"}: exactly that; authData, which carries nothing Apple signs, is ignored. */
export function parseAppleStatement(envelope: Pick<AttestationEnvelope, 'attStmt'>): AppleStatement {
  const s = envelope.attStmt;
  if (s.size !== 1 || !s.has('x5c')) throw new AttestationError('attestation object', 'attStmt of fmt apple must be {"x5c": [bytes, ...]}');
  const chain = parseFreshLeafChain(s.get('x5c'));
  const leaf = chain.certificates[0]!;
  return { ...chain, serial: serialOf(extensionValue(leaf, APPLE_OID.serialNumber)), nonce: nonceOf(extensionValue(leaf, APPLE_OID.nonce)) };
}

/**
 * Check 3: Apple certified x5c[0]'s key for this challenge, its freshness
 * code being SHA-256 of the token alone (draft-ietf-acme-device-attest-09
 * section 5: an outside attestation authority binds the token, not the key
 * authorization); there is no signature of the device's own to verify.
 */
export function appleBindingProblem(statement: AppleStatement, challenge: AttestationChallenge): CheckFailure | undefined {
  const expected = createHash('sha256').update(challenge.token, 'utf8').digest();
  if (!statement.nonce.equals(expected)) return { check: 'check 3 (nonce)', detail: `the freshness extension ${APPLE_OID.nonce} is not the SHA-256 of the challenge token` };
  return undefined;
}

/**
 * fmt "apple" (docs/device-makers/protocol.md): Apple Managed Device
 * Attestation, a certificate Apple's attestation service made for the new
 * key, naming the device serial and the challenge; the chain ends at
 * Apple's Enterprise Attestation Root registered as a manufacturer.
 */
export const APPLE: AttestationFormat = {
  fmt: APPLE_FMT,
  parse(envelope): AttestationEvidence {
    const statement = parseAppleStatement(envelope);
    return {
      fmt: APPLE_FMT, chain: statement.chain, key: statement.key, counter: 0, firmware: null,
      identity: { kind: 'manufacturer-serial', serial: statement.serial },
      // Apple's certificate is the proof: the key the RA would verify with is the leaf's own, and there is no device signature.
      signatureProblem: (signerSpki) => (signerSpki.equals(statement.key.spki) ? undefined : { check: 'check 3 (x5c[0])', detail: 'the attesting key is not the key of x5c[0]' }),
      bindingProblem: (challenge) => appleBindingProblem(statement, challenge),
    };
  },
};
