import { X509Certificate } from 'node:crypto';
import type { KeyProvider } from '../hsm/provider.ts';
import type { CaStore } from '../store/ca-store.ts';
import type { FirmwareSignerRecord } from '../store/firmware-signer-store.ts';
import { HierarchyError } from './hierarchy.ts';
import { encodeManifest, signEnvelope, type SignedEnvelope } from './suit.ts';
import { NAMESPACE_DNS, uuidV5 } from './uuid.ts';

/** What a signed manifest states about a release. */
export interface ReleaseToSign {
  model: string;
  /** SHA-256 of the image, hex. */
  digest: string;
  size: number;
  sequence: number;
}

/** The one component of a device this CA signs for: its firmware image, index 0 as in the draft's examples. */
export const FIRMWARE_COMPONENT_ID: readonly Buffer[] = [Buffer.from([0])];

/**
 * RFC 9124 4.2.2 identifiers (docs/operators/firmware.md): the vendor id is
 * UUIDv5 of the trust domain in the DNS name space, the class id UUIDv5 of
 * the model name in the vendor id's name space.
 */
export function suitIdentifiers(trustDomain: string, model: string): { vendorId: Buffer; classId: Buffer } {
  const vendorId = uuidV5(NAMESPACE_DNS, trustDomain);
  return { vendorId, classId: uuidV5(vendorId, model) };
}

/**
 * Signs a release's SUIT envelope with its model's signer key in the token
 * (found by the recorded CKA_ID and checked against the signer's certificate),
 * carrying the signer's certificate and the firmware intermediate in x5chain.
 */
export class FirmwareReleaseSigner {
  constructor(
    private readonly provider: KeyProvider,
    private readonly trustDomain: string,
  ) {}

  /** `caCertificates` is read in the caller's transaction (the firmware intermediate goes in x5chain). */
  async sign(signer: FirmwareSignerRecord, release: ReleaseToSign, caCertificates: Pick<CaStore, 'all'>): Promise<SignedEnvelope> {
    const key = await this.provider.findKeyById(signer.keyId);
    if (!key) throw new HierarchyError(`the token holds no firmware signer key with CKA_ID ${signer.keyId.toString('hex')} ("${signer.keyLabel}")`);
    if (!new X509Certificate(signer.certificateDer).publicKey.equals(key.publicKey)) throw new HierarchyError(`the key "${signer.keyLabel}" in the token does not match the firmware signer certificate ${signer.certificateSerial}`);
    const intermediate = (await caCertificates.all()).find((record) => record.id === signer.issuerId);
    if (!intermediate) throw new HierarchyError(`the firmware intermediate of signer ${signer.certificateSerial} is not recorded`);
    const manifest = encodeManifest({
      sequence: release.sequence,
      componentId: [...FIRMWARE_COMPONENT_ID],
      ...suitIdentifiers(this.trustDomain, release.model),
      imageDigest: Buffer.from(release.digest, 'hex'),
      imageSize: release.size,
    });
    return signEnvelope(manifest, [signer.certificateDer, intermediate.der], (data) => this.provider.sign(key, data));
  }
}
