import { cbor, tagged } from './cbor.ts';

/** RFC 9052 and its registries: the labels and values a COSE_Sign1 here uses. */
export const COSE = {
  /** RFC 9052 4.2: COSE_Sign1_Tagged. */
  sign1Tag: 18,
  /** RFC 9052 3.1 header label alg. */
  alg: 1,
  /** RFC 9053 2.1: ECDSA w/ SHA-256. */
  es256: -7,
  /** RFC 9360 2: x5chain, the signer's certificate first. */
  x5chain: 33,
} as const;

/** RFC 9052 4.4: Sig_structure = ["Signature1", body_protected, external_aad, payload], the bytes actually signed. */
export function sigStructure1(protectedHeader: Buffer, externalAad: Buffer, payload: Buffer): Buffer {
  return cbor(['Signature1', protectedHeader, externalAad, payload]);
}

/** Signs bytes with SHA-256 and returns the raw r||s (RFC 9053 2.1: what COSE carries, not a DER Ecdsa-Sig-Value). */
export type RawEs256Signer = (data: Buffer) => Promise<Buffer>;

/**
 * A COSE_Sign1_Tagged with a detached payload (RFC 9052 2: payload nil, the
 * verifier supplies it), ES256 in the protected header and the signer's
 * chain in x5chain (RFC 9360: one bstr for a single certificate, else an array).
 */
export async function signDetachedEs256(payload: Buffer, chain: readonly Buffer[], sign: RawEs256Signer): Promise<Buffer> {
  if (chain.length === 0) throw new Error('an x5chain needs the signer\'s certificate');
  const protectedHeader = cbor(new Map([[COSE.alg, COSE.es256]]));
  const signature = await sign(sigStructure1(protectedHeader, Buffer.alloc(0), payload));
  if (signature.length !== 64) throw new Error(`an ES256 signature is 64 bytes of r||s, the token returned ${signature.length}`);
  const unprotected = new Map([[COSE.x5chain, chain.length === 1 ? chain[0] : [...chain]]]);
  return cbor(tagged(COSE.sign1Tag, [protectedHeader, unprotected, null, signature]));
}
