import { createHash, verify as nodeVerify } from 'node:crypto';
import { Decoder, Tag } from 'cbor-x';
import { cbor } from '../ca/cbor.ts';
import { COSE, sigStructure1 } from '../ca/cose.ts';
import { SUIT } from '../ca/suit.ts';
import { checkCertificate, type CheckedCertificate } from './certificate-key.ts';

/** RFC 5280 4.2.1.12: id-kp-codeSigning, required of a firmware signer. */
export const CODE_SIGNING = '1.3.6.1.5.5.7.3.3';

const decoder = new Decoder({ mapsAsObjects: false, useRecords: false });

/** Why an envelope is refused: the first rule it breaks. */
export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}

/** What a verified envelope says (docs/operators/firmware.md#the-signed-manifest). */
export interface VerifiedEnvelope {
  /** Hex SHA-256 of the bstr-wrapped manifest: the name histories and exports give it. */
  manifestSha256: string;
  sequence: number;
  vendorId: Buffer;
  classId: Buffer;
  /** SHA-256 of the image. */
  imageDigest: Buffer;
  imageSize: number;
  /** x5chain[0], the signer's certificate. */
  signer: CheckedCertificate;
  /** The anchor the signer chains to. */
  anchor: CheckedCertificate;
}

function need(condition: unknown, reason: string): asserts condition {
  if (!condition) throw new EnvelopeError(reason);
}

const isBytes = (value: unknown): value is Uint8Array => value instanceof Uint8Array;
const bytes = (value: Uint8Array) => Buffer.from(value.buffer, value.byteOffset, value.byteLength);

function decode(data: Uint8Array, what: string): unknown {
  try {
    return decoder.decode(data);
  } catch {
    throw new EnvelopeError(`${what} is not well-formed CBOR`);
  }
}

function tagged(value: unknown, tag: number, what: string): unknown {
  need(value instanceof Tag && value.tag === tag, `${what} is not tagged ${tag}`);
  return (value as Tag).value;
}

function map(value: unknown, what: string): Map<unknown, unknown> {
  need(value instanceof Map, `${what} is not a map`);
  return value as Map<unknown, unknown>;
}

function bstr(value: unknown, what: string): Buffer {
  need(isBytes(value), `${what} is not a byte string`);
  return bytes(value as Uint8Array);
}

function uintOf(value: unknown, what: string): number {
  const n = typeof value === 'bigint' ? Number(value) : value;
  need(typeof n === 'number' && Number.isSafeInteger(n) && n >= 0, `${what} is not an unsigned integer`);
  return n as number;
}

/** SUIT_Digest [-16, bstr .size 32]: a SHA-256, the only algorithm this CA writes. */
function sha256Digest(encoded: Buffer, what: string): Buffer {
  const digest = decode(encoded, what);
  need(Array.isArray(digest) && digest.length === 2 && digest[0] === SUIT.sha256, `${what} is not a SHA-256 SUIT_Digest (-16)`);
  const value = bstr(digest[1], what);
  need(value.length === 32, `${what} is not 32 bytes`);
  return value;
}

/**
 * Checks a signed SUIT envelope (draft-ietf-suit-manifest, RFC 9052, RFC
 * 9360) the way a device does before it installs an image, in this order:
 * the authentication wrapper's SHA-256 against the bstr-wrapped manifest;
 * the COSE_Sign1 (ES256, detached payload: the wrapper's SUIT_Digest) with
 * the key of x5chain[0]; that certificate issued by one of `anchors` (the
 * firmware intermediate, never the root alone), not a CA, with
 * id-kp-codeSigning, and x5chain[1], when there, that very anchor; then reads the manifest's sequence, ids, image digest
 * and size. Every certificate goes through checkCertificate first. Throws
 * EnvelopeError naming the rule broken.
 */
export function verifyEnvelope(envelope: Uint8Array, anchors: readonly CheckedCertificate[]): VerifiedEnvelope {
  need(anchors.length > 0, 'no firmware intermediate to anchor the signer at');
  const outer = map(tagged(decode(envelope, 'the envelope'), SUIT.envelopeTag, 'the envelope (SUIT_Envelope_Tagged)'), 'the envelope');
  const authenticationBstr = bstr(outer.get(SUIT.envelope.authenticationWrapper), 'the authentication wrapper');
  const manifestBstr = bstr(outer.get(SUIT.envelope.manifest), 'the manifest');
  const authentication = decode(authenticationBstr, 'the authentication wrapper');
  need(Array.isArray(authentication) && authentication.length >= 2, 'the authentication wrapper needs a digest and a signature');
  const digestBstr = bstr(authentication[0], 'the manifest digest');
  const manifestDigest = sha256Digest(digestBstr, 'the manifest digest');
  // The digest covers the manifest as the envelope carries it: bstr-wrapped.
  const wrapped = cbor(manifestBstr);
  need(createHash('sha256').update(wrapped).digest().equals(manifestDigest), 'the manifest does not match the authentication wrapper\'s digest');

  const sign1 = tagged(decode(bstr(authentication[1], 'the signature'), 'the signature'), COSE.sign1Tag, 'the signature (COSE_Sign1_Tagged)');
  need(Array.isArray(sign1) && sign1.length === 4, 'the COSE_Sign1 is not [protected, unprotected, payload, signature]');
  const [protectedValue, unprotectedValue, payload, signatureValue] = sign1 as unknown[];
  const protectedBstr = bstr(protectedValue, 'the protected header');
  need(map(decode(protectedBstr, 'the protected header'), 'the protected header').get(COSE.alg) === COSE.es256, 'the protected header\'s alg is not ES256 (-7)');
  need(payload === null, 'the COSE_Sign1 payload must be detached (nil)');
  const signature = bstr(signatureValue, 'the COSE signature');
  need(signature.length === 64, 'an ES256 signature is 64 bytes of r||s');
  const x5chain = map(unprotectedValue, 'the unprotected header').get(COSE.x5chain);
  const chain = isBytes(x5chain) ? [x5chain] : x5chain;
  need(Array.isArray(chain) && chain.length >= 1 && chain.length <= 2 && chain.every(isBytes), 'x5chain must carry the signer\'s certificate, and at most the firmware intermediate after it');
  let signer: CheckedCertificate;
  try {
    signer = checkCertificate((chain as Uint8Array[])[0]!);
  } catch (err) {
    throw new EnvelopeError(`x5chain[0] is refused: ${err instanceof Error ? err.message : String(err)}`);
  }
  const toBeSigned = sigStructure1(protectedBstr, Buffer.alloc(0), digestBstr);
  need(signer.key.curve === 'P-256' && nodeVerify('sha256', toBeSigned, { key: signer.key.key, dsaEncoding: 'ieee-p1363' }, signature),
    'the COSE signature does not verify with the key of x5chain[0]');

  const anchor = anchors.find((a) => signer.cert.checkIssued(a.cert) && signer.cert.verify(a.key.key));
  need(anchor, 'x5chain[0] is not issued by the firmware intermediate');
  // The intermediate the envelope carries (unsigned: the unprotected header) must be the anchor itself, not any other bytes.
  need(chain.length === 1 || bytes((chain as Uint8Array[])[1]!).equals(anchor.der), 'x5chain[1] is not the firmware intermediate that issued x5chain[0]');
  need(!signer.cert.ca, 'the signer\'s certificate is a CA certificate');
  need((signer.cert.keyUsage ?? []).includes(CODE_SIGNING), 'the signer\'s certificate lacks id-kp-codeSigning');

  const manifest = map(decode(manifestBstr, 'the manifest'), 'the manifest');
  need(manifest.get(SUIT.manifest.version) === SUIT.manifestVersion, 'the manifest version is not 1');
  const sequence = uintOf(manifest.get(SUIT.manifest.sequenceNumber), 'the sequence number');
  const common = map(decode(bstr(manifest.get(SUIT.manifest.common), 'the common section'), 'the common section'), 'the common section');
  const shared = decode(bstr(common.get(SUIT.common.sharedSequence), 'the shared sequence'), 'the shared sequence');
  need(Array.isArray(shared) && shared[0] === SUIT.directive.overrideParameters, 'the shared sequence does not start by setting parameters');
  const parameters = map(shared[1], 'the parameters');
  return {
    manifestSha256: manifestDigest.toString('hex'),
    sequence,
    vendorId: bstr(parameters.get(SUIT.parameter.vendorIdentifier), 'the vendor id'),
    classId: bstr(parameters.get(SUIT.parameter.classIdentifier), 'the class id'),
    imageDigest: sha256Digest(bstr(parameters.get(SUIT.parameter.imageDigest), 'the image digest'), 'the image digest'),
    imageSize: uintOf(parameters.get(SUIT.parameter.imageSize), 'the image size'),
    signer,
    anchor,
  };
}
