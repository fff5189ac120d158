import { validateBirthChain, type ValidatedBirth } from '../../pki/attestation/birth-chain.ts';
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
  const { pending, evidence, challenge, requester, now } = request;
  for (const manufacturer of await tx.manufacturers.all()) {
    if (manufacturer.status !== 'active' || !manufacturer.active) continue;
    let birth: ValidatedBirth;
    try {
      const { anchors, withdrawn } = trustOf(manufacturer);
      birth = validateBirthChain(evidence.chain, anchors, now, withdrawn);
    } catch {
      continue;
    }
    if (birth.identity.serial !== pending.serial || evidence.signatureProblem(birth.identity.keySpki, challenge)) continue;
    return {
      error: enrollmentError.badAttestation('check 1 (claim)', `device ${pending.serial} of manufacturer ${manufacturer.id} is not claimed by this operator`),
      events: [{
        action: 'device.unclaimed-attestation', actor: requester.actor, device: pending.serial,
        data: { manufacturer: manufacturer.id, birthCertificateSha256: birth.identity.sha256, birthSerial: birth.identity.serialHex, order: pending.id, ...requester.data },
      }],
    };
  }
  log.info({ device: pending.serial, order: pending.id }, 'attestation of an unknown device refused');
  return { error: enrollmentError.badAttestation('check 1 (chain)', `x5c[0] does not chain to a registered manufacturer, or does not name device ${pending.serial}`), events: [] };
}
