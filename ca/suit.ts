import { createHash } from 'node:crypto';
import { cbor, tagged, uint } from './cbor.ts';
import { signDetachedEs256, type RawEs256Signer } from './cose.ts';

/**
 * SUIT (RFC 9124's information model, encoded as draft-ietf-suit-manifest
 * defines): the labels this CA writes. A release's manifest has the shape of
 * the draft's example 0: one component, its vendor and class checked, its
 * image digest matched, then invoked.
 */
export const SUIT = {
  envelopeTag: 107,
  envelope: { authenticationWrapper: 2, manifest: 3 },
  manifest: { version: 1, sequenceNumber: 2, common: 3, validate: 7, invoke: 9 },
  common: { components: 2, sharedSequence: 4 },
  parameter: { vendorIdentifier: 1, classIdentifier: 2, imageDigest: 3, imageSize: 14 },
  condition: { vendorIdentifier: 1, classIdentifier: 2, imageMatch: 3 },
  directive: { overrideParameters: 20, invoke: 23 },
  /** SUIT_Rep_Policy: record and report on success and failure. */
  reportAll: 15,
  /** SUIT_Rep_Policy of the invoke directive in the draft's examples: report on failure. */
  reportFailure: 2,
  /** COSE algorithm id of SHA-256 (RFC 9054), the SUIT_Digest algorithm. */
  sha256: -16,
  manifestVersion: 1,
} as const;

export interface ManifestFields {
  sequence: number;
  /** SUIT_Component_Identifier: a list of byte strings. */
  componentId: Buffer[];
  vendorId: Buffer;
  classId: Buffer;
  /** SHA-256 of the image. */
  imageDigest: Buffer;
  imageSize: number;
}

/** SUIT_Digest = [algorithm-id, digest-bytes], encoded. */
export function suitDigest(digest: Buffer): Buffer {
  return cbor([SUIT.sha256, digest]);
}

/** The SUIT_Manifest, encoded: what the envelope carries bstr-wrapped and what the authentication wrapper's digest covers. */
export function encodeManifest(fields: ManifestFields): Buffer {
  if (fields.imageDigest.length !== 32) throw new Error('the image digest is a SHA-256');
  const shared = cbor([
    SUIT.directive.overrideParameters, new Map<number, unknown>([
      [SUIT.parameter.vendorIdentifier, fields.vendorId],
      [SUIT.parameter.classIdentifier, fields.classId],
      [SUIT.parameter.imageDigest, suitDigest(fields.imageDigest)],
      [SUIT.parameter.imageSize, uint(fields.imageSize)],
    ]),
    SUIT.condition.vendorIdentifier, SUIT.reportAll,
    SUIT.condition.classIdentifier, SUIT.reportAll,
  ]);
  const common = cbor(new Map<number, unknown>([[SUIT.common.components, [fields.componentId]], [SUIT.common.sharedSequence, shared]]));
  return cbor(new Map<number, unknown>([
    [SUIT.manifest.version, SUIT.manifestVersion],
    [SUIT.manifest.sequenceNumber, uint(fields.sequence)],
    [SUIT.manifest.common, common],
    [SUIT.manifest.validate, cbor([SUIT.condition.imageMatch, SUIT.reportAll])],
    [SUIT.manifest.invoke, cbor([SUIT.directive.invoke, SUIT.reportFailure])],
  ]));
}

export interface SignedEnvelope {
  envelope: Buffer;
  /** Hex SHA-256 of the bstr-wrapped manifest: how histories and exports name it. */
  manifestSha256: string;
}

/**
 * SUIT_Envelope_Tagged: the authentication wrapper (the SUIT_Digest of the
 * bstr-wrapped manifest, and a COSE_Sign1 whose detached payload is that
 * SUIT_Digest, as the wrapper's first element carries it) and the manifest.
 */
export async function signEnvelope(manifest: Buffer, chain: readonly Buffer[], sign: RawEs256Signer): Promise<SignedEnvelope> {
  const manifestDigest = createHash('sha256').update(cbor(manifest)).digest();
  const digest = suitDigest(manifestDigest);
  const signature = await signDetachedEs256(digest, chain, sign);
  const authentication = cbor([digest, signature]);
  const envelope = cbor(tagged(SUIT.envelopeTag, new Map<number, unknown>([
    [SUIT.envelope.authenticationWrapper, authentication],
    [SUIT.envelope.manifest, manifest],
  ])));
  return { envelope, manifestSha256: manifestDigest.toString('hex') };
}
