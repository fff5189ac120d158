import { sha256Hex } from '../../ca/digest.ts';
import { AttestationError } from '../../pki/attestation/attestation-object.ts';
import { normalizeSerialHex, validatePath } from '../../pki/attestation/birth-chain.ts';
import { checkCertificate } from '../../pki/certificate-key.ts';
import type { AttestationEvidence } from '../../pki/attestation/format.ts';
import type { ClaimStore } from '../../store/claim-store.ts';
import type { ManufacturerStore } from '../../store/manufacturer-store.ts';
import type { ModelStore } from '../../store/model-store.ts';
import type { DeviceRecord } from '../../store/types.ts';
import { trustOf } from '../manufacturers/manufacturers.ts';

type Refusal = { ok: false; error: AttestationError };
const refusal = (check: string, detail: string): Refusal => ({ ok: false, error: new AttestationError(check, detail) });

/** What it reads: the claim, the manufacturer, the model. */
export interface ManufacturerAttestedStore {
  claims: Pick<ClaimStore, 'find'>;
  manufacturers: Pick<ManufacturerStore, 'find'>;
  models: Pick<ModelStore, 'byName'>;
}

/** What check 1 established for a statement of the manufacturer's attestation service: the leaf that attested, and its key. */
export interface ManufacturerAttested {
  certificate: { serial: string; kind: string; sha256: string };
  spki: Buffer;
}

/**
 * Check 1 and 2 for a format whose x5c[0] is made fresh for each key by
 * the manufacturer's attestation service (apple, android-key;
 * docs/operators/manufacturers.md): the device is claimed by (manufacturer,
 * serial), with no birth certificate; the chain ends at that manufacturer's
 * active anchor; the serial the service states is the device's; its model
 * is one the manufacturer vouches for; and nothing the format knows of
 * (Android's status list) revokes the chain.
 */
export async function manufacturerAttested(
  store: ManufacturerAttestedStore, input: { device: DeviceRecord; evidence: AttestationEvidence; now: Date }, identity: { serial: string | null; serialProblem?: string },
): Promise<ManufacturerAttested | Refusal> {
  const { device, now, evidence } = input;
  if (device.manufacturer === 'self') return refusal('check 1 (claim)', `device ${device.serial} was born here: it attests with its birth certificate, not with ${evidence.fmt}`);
  const claim = await store.claims.find(device.serial);
  if (!claim) return refusal('check 1 (claim)', `device ${device.serial} is not claimed`);
  if (claim.supersededAt) return refusal('check 1 (claim)', `device ${device.serial} was reprovisioned ${claim.supersededAt.toISOString()}: its manufacturer's attestation counts no more`);
  if (claim.birthCertificateSha256 !== null) {
    return refusal('check 1 (claim)', `device ${device.serial} is claimed with a birth certificate: it attests with that certificate, not with ${evidence.fmt}`);
  }
  const manufacturer = await store.manufacturers.find(claim.manufacturer);
  if (manufacturer?.status !== 'active' || !manufacturer.active) return refusal('check 1 (anchor)', `manufacturer ${claim.manufacturer} is ${manufacturer?.status ?? 'not registered'}`);
  try {
    const { anchors, withdrawn } = trustOf(manufacturer);
    validatePath(evidence.chain, anchors, now, 'x5c[0]', withdrawn);
  } catch (err) {
    if (err instanceof AttestationError) return refusal(err.check, err.detail);
    throw err;
  }
  const { serial } = identity;
  if (serial === null) return refusal('check 2 (serial)', identity.serialProblem ?? `the ${evidence.fmt} statement names no device serial`);
  if (serial !== device.serial) return refusal('check 2 (serial)', `the ${evidence.fmt} statement names device ${serial}, not ${device.serial}`);
  const model = await store.models.byName(device.model);
  if (!manufacturer.active.models.includes(device.model) || !model) return refusal('check 1 (model)', `manufacturer ${manufacturer.id} may not vouch for model ${device.model}`);
  const revoked = await evidence.revocationProblem?.(now);
  if (revoked) return refusal(revoked.check, revoked.detail);
  const leaf = checkCertificate(evidence.chain[0]!);
  return {
    certificate: { serial: normalizeSerialHex(leaf.cert.serialNumber), kind: 'attestation', sha256: sha256Hex(leaf.der) },
    spki: leaf.key.spki,
  };
}
