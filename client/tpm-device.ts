import { createHash } from 'node:crypto';
import { buildTpmAttestation, type AttestationInput } from './attestation.ts';
import type { HeldKey, KeyHardware } from './device.ts';
import type { FactoryKey } from './factory-key.ts';
import { AK_ATTRIBUTES, hex, KEY_ATTRIBUTES, Tpm } from './tpm.ts';
import { tpmCsr } from './tpm-csr.ts';

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest();

/** Where a TPM device keeps its keys, as device.json records them. */
export interface TpmHandles {
  /** The storage primary key every key is created under. */
  parent: number;
  /** The attestation key: the birth certificate's key. */
  ak: number;
  /** The two persistent handles operational keys take turns in: the current key's, and its successor's. */
  slots: [number, number];
  /** The current operational key's handle, once there is one. */
  key?: number;
}

/** TPMA_OBJECT bits (TPM 2.0 Part 2, 8.3.2) an attestation key must have. */
const AK_BITS = { fixedTPM: 0x2, fixedParent: 0x10, sensitiveDataOrigin: 0x20, restricted: 0x10000, sign: 0x40000 };

/** Why the key at `handle` is no attestation key, or undefined when it is one. */
export function notAnAttestationKey(tpm: Tpm, handle: number): string | undefined {
  const area = tpm.publicArea(handle);
  // TPMT_PUBLIC: type (2), nameAlg (2), objectAttributes (4).
  if (area.length < 8 || area.readUInt16BE(0) !== 0x0023) return `the key at ${hex(handle)} is not an ECC key`;
  const attributes = area.readUInt32BE(4);
  const missing = Object.entries(AK_BITS).filter(([, bit]) => (attributes & bit) === 0).map(([name]) => name);
  return missing.length > 0 ? `the key at ${hex(handle)} lacks ${missing.join(', ')}` : undefined;
}

/**
 * The factory line's part: the storage primary key and the attestation key
 * (restricted, ECDSA P-256 with SHA-256) at their persistent handles,
 * created unless an attestation key is already there (a line may run it
 * again). Throws when the AK handle holds another kind of key.
 */
export function createAttestationKey(tpm: Tpm, handles: Pick<TpmHandles, 'parent' | 'ak'>): void {
  tpm.ensurePrimary(handles.parent);
  if (tpm.has(handles.ak)) {
    const why = notAnAttestationKey(tpm, handles.ak);
    if (why) throw new Error(`${why}: choose another handle, or remove it (tpm2_evictcontrol -C o -c ${hex(handles.ak)})`);
    return;
  }
  tpm.createKey(handles.parent, handles.ak, 'ecc256:ecdsa-sha256:null', AK_ATTRIBUTES);
}

/**
 * The attestation key as the device's factory key: it signs its birth CSR
 * through TPM2_Hash + TPM2_Sign with the hash ticket (a restricted key
 * signs only what its TPM hashed), and nothing else.
 */
export function tpmFactoryKey(tpm: Tpm, ak: number, subject: string): FactoryKey {
  const spki = tpm.publicKeyDer(ak);
  return {
    spki,
    coseAlg: -7,
    sign: async (data) => tpm.hashAndSign(ak, data),
    csr: async () => {
      const der = tpmCsr(subject, spki, (tbs) => tpm.hashAndSign(ak, tbs));
      return `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE REQUEST-----\n`;
    },
    close: async () => tpm.close(),
  };
}

/**
 * Operational keys in the TPM (ECC P-256, fixedTPM|fixedParent|
 * sensitiveDataOrigin|userWithAuth|sign: they can never leave it), each
 * attested in the `tpm` format: TPM2_Certify of the key by the attestation
 * key with qualifyingData = SHA-256(keyAuthorization).
 */
export class TpmKeys implements KeyHardware {
  constructor(
    private readonly tpm: Tpm,
    private readonly handles: TpmHandles,
    /** Records the new current key's handle (device.json). */
    private readonly onKeep: (handle: number) => void,
  ) {}

  private held(handle: number): HeldKey {
    const spki = this.tpm.publicKeyDer(handle);
    return {
      ref: hex(handle),
      spki,
      // The CA accepts CN=<serial> only: the subject is that one name.
      csr: async (subject) => tpmCsr(subject.replace(/^CN=/, ''), spki, (tbs) => this.tpm.signDigest(handle, sha256(tbs))).toString('base64url'),
    };
  }

  /** A new key in the slot the current key is not in (a key left there by a renewal that never finished goes). */
  async create(): Promise<HeldKey> {
    const slot = this.handles.slots.find((h) => h !== this.handles.key)!;
    if (this.tpm.has(slot)) this.tpm.evict(slot);
    this.tpm.createKey(this.handles.parent, slot, 'ecc256', KEY_ATTRIBUTES);
    return this.held(slot);
  }

  async open(ref: string): Promise<HeldKey> {
    const handle = Number.parseInt(ref, 16);
    if (!this.handles.slots.includes(handle)) throw new Error(`${ref} is not one of this device's TPM key handles`);
    return this.held(handle);
  }

  async attest(key: HeldKey, input: AttestationInput): Promise<Buffer> {
    const handle = Number.parseInt(key.ref, 16);
    const { certInfo, signature } = this.tpm.certify(handle, this.handles.ak, sha256(input.keyAuthorization));
    return buildTpmAttestation({ x5c: input.x5c, certInfo, sig: signature, pubArea: this.tpm.publicArea(handle) });
  }

  async keep(ref: string): Promise<void> {
    const handle = Number.parseInt(ref, 16);
    this.handles.key = handle;
    this.onKeep(handle);
  }

  /** Evicts the slot the current key is not in: the replaced key (its certificate has a successor), or a key whose order failed. */
  async retire(): Promise<void> {
    const other = this.handles.slots.find((h) => h !== this.handles.key)!;
    if (this.handles.key !== undefined && this.tpm.has(other)) this.tpm.evict(other);
  }
}
