import type { KeyHandle } from '../hsm/provider.ts';
import type { FirmwareSignerRecord } from '../store/firmware-signer-store.ts';
import type { FirmwareSignerCeremonyStore } from '../store/subsets.ts';
import { HierarchyError, type Hierarchy, type KeyCeremony } from './hierarchy.ts';
import { IssuanceService } from './issuance.ts';
import { firmwareSignerProfile } from './profiles.ts';

/** CKA_LABEL of a model's n-th firmware signer key; the recorded CKA_ID finds it (docs/operators/firmware.md). */
export function firmwareSignerLabel(model: string, generation = 1): string {
  return generation === 1 ? `devid-firmware-signer-${model}` : `devid-firmware-signer-${model}-${generation}`;
}

export interface FirmwareSignerOptions {
  model: string;
  organization: string;
  baseUrl: string;
  now: Date;
}

/**
 * Makes a model's firmware signer: a P-256 key in the token (ES256, the COSE
 * algorithm of the manifests) and its certificate from the firmware
 * intermediate, issued through the one linted pipeline and recorded with the
 * key's CKA_ID. A model's revoked signer is retired and replaced (key label
 * `devid-firmware-signer-<model>-<n>`). Run inside the caller's ceremony transaction.
 */
export async function createFirmwareSigner(ceremony: KeyCeremony, tx: FirmwareSignerCeremonyStore, hierarchy: Hierarchy, options: FirmwareSignerOptions): Promise<FirmwareSignerRecord> {
  const issuer = hierarchy.firmware;
  if (!issuer) throw new HierarchyError('there is no firmware intermediate yet: run "devid-ca ca create firmware" (a root ceremony) first');
  if (!(await tx.models.byNameForUpdate(options.model))) throw new HierarchyError(`no model ${options.model}: declare it first`);
  const existing = await tx.firmwareSigners.ofModel(options.model);
  if (existing) {
    // A signer is replaced only once revoked: two live signers of one model would make a revocation incomplete.
    if (!(await tx.certificates.find(existing.certificateSerial))?.revokedAt) {
      throw new HierarchyError(`model ${options.model} has a firmware signer already (key ${existing.keyLabel}, certificate ${existing.certificateSerial}); revoke its certificate first to replace it`);
    }
    await tx.firmwareSigners.retire(options.model, options.now);
  }
  const generation = (await tx.firmwareSigners.countOfModel(options.model)) + 1;
  const key: KeyHandle = await ceremony.createKey(firmwareSignerLabel(options.model, generation), 'P-256');
  const spki = key.publicKey.export({ format: 'der', type: 'spki' });
  const profile = firmwareSignerProfile({ issuer, spki, baseUrl: options.baseUrl, now: options.now }, { signs: options.model, organization: options.organization });
  const issued = await new IssuanceService(() => options.now).issue(tx, { issuer, profile, deviceSerial: null, predecessorSha256: null });
  const record: FirmwareSignerRecord = {
    model: options.model, certificateSerial: issued.record.serial, issuerId: issuer.id, certificateDer: issued.der,
    keyLabel: key.label, keyId: key.id, createdAt: options.now,
  };
  await tx.firmwareSigners.insert(record);
  return record;
}
