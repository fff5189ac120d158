import { sha256Hex } from '../../ca/digest.ts';
import { validateBirthChain, validatePath, type ValidatedBirth } from '../../pki/attestation/birth-chain.ts';
import type { ManufacturerRecord } from '../../store/manufacturer-store.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import { trustOf } from '../manufacturers/manufacturers.ts';
import { enrollmentError, type Refusal } from './errors.ts';
import type { AttestRequest, EnrollmentLog } from './types.ts';

/**
 * An attestation for a serial no device record has (docs/operators/manufacturers.md):
 * when the chain leads to an active manufacturer, names the serial and its
 * signature verifies, a genuine device that is not ours tried to enroll
 * (grey-market or stolen): refused and audited with the evidence.
 * Otherwise it is an unknown chain, refused and logged.
 */
export async function refuseUnclaimed(tx: EnrollmentStore, log: EnrollmentLog, request: AttestRequest): Promise<Refusal> {
  const { pending, requester } = request;
  for (const manufacturer of await tx.manufacturers.all()) {
    if (manufacturer.status !== 'active' || !manufacturer.active) continue;
    const genuine = genuineDevice(request, manufacturer);
    if (!genuine) continue;
    return {
      error: enrollmentError.badAttestation('check 1 (claim)', `device ${pending.serial} of manufacturer ${manufacturer.id} is not claimed by this operator`),
      events: [{
        action: 'device.unclaimed-attestation', actor: requester.actor, device: pending.serial,
        data: { manufacturer: manufacturer.id, ...genuine, order: pending.id, ...requester.data },
      }],
    };
  }
  log.info({ device: pending.serial, order: pending.id }, 'attestation of an unknown device refused');
  return { error: enrollmentError.badAttestation('check 1 (chain)', `x5c[0] does not chain to a registered manufacturer, or does not name device ${pending.serial}`), events: [] };
}

/**
 * What identifies a genuine device of this manufacturer in the attestation,
 * or undefined: a birth certificate that chains and names the serial, whose
 * key signed; or (apple, android-key) a leaf the manufacturer's attestation
 * service made for this serial and this challenge.
 */
function genuineDevice(request: AttestRequest, manufacturer: ManufacturerRecord): Record<string, string> | undefined {
  const { pending, evidence, challenge, now } = request;
  const { anchors, withdrawn } = trustOf(manufacturer);
  if (evidence.identity?.kind === 'manufacturer-serial') {
    try {
      validatePath(evidence.chain, anchors, now, 'x5c[0]', withdrawn);
    } catch {
      return undefined;
    }
    if (evidence.identity.serial !== pending.serial || evidence.signatureProblem(evidence.key.spki, challenge) || evidence.bindingProblem(challenge)) return undefined;
    return { fmt: evidence.fmt, leafSha256: sha256Hex(evidence.chain[0]!) };
  }
  let birth: ValidatedBirth;
  try {
    birth = validateBirthChain(evidence.chain, anchors, now, withdrawn);
  } catch {
    return undefined;
  }
  if (birth.identity.serial !== pending.serial || evidence.signatureProblem(birth.identity.keySpki, challenge)) return undefined;
  return { birthCertificateSha256: birth.identity.sha256, birthSerial: birth.identity.serialHex };
}
