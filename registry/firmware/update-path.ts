import type { FirmwareState } from '../../store/device-store.ts';
import type { FirmwareReport } from '../../store/types.ts';
import { firmwareProblem } from '../catalogue/firmware-policy.ts';

/** Check 5's verdict: the firmware to record (with the release it maps to), or why not. */
export type FirmwareDecision =
  | { ok: true; firmware: FirmwareReport | null }
  | { ok: false; detail: string; withdrawn?: { version: string; digest: string } };

/**
 * Check 5, the verified update path (docs/operators/firmware.md): where the
 * model has approved releases, the device must report firmware, its digest
 * must map to an approved release that is not withdrawn (a digest maps to
 * its newest such release), and that release's sequence may not be below
 * the floor, the higher of the device's last attested sequence and the
 * model's highest minSequence: no rollback. A downgrade is a new release of
 * the old image with a higher sequence, approved like any other. A model
 * without releases keeps its allowlist, if any (registry/catalogue/firmware-policy.ts).
 */
export function updatePathDecision(state: FirmwareState, allowed: readonly FirmwareReport[], reported: FirmwareReport | null): FirmwareDecision {
  if (state.releases.length === 0) {
    const problem = firmwareProblem(allowed, reported);
    return problem ? { ok: false, detail: problem } : { ok: true, firmware: reported };
  }
  if (!reported) return { ok: false, detail: 'the model has signed firmware releases and the attestation reports no firmware' };
  const digest = reported.digest.toLowerCase();
  const matching = state.releases.filter((r) => r.digest === digest);
  const live = matching.filter((r) => !r.withdrawn);
  if (live.length === 0) {
    if (matching.length > 0) {
      const version = matching.at(-1)!.version;
      return { ok: false, detail: `firmware ${digest} is release ${version}, which was withdrawn: update to an approved release`, withdrawn: { version, digest } };
    }
    return { ok: false, detail: `firmware ${reported.version} with digest ${digest} is no approved release of the model` };
  }
  const release = live.reduce((a, b) => (b.sequence > a.sequence ? b : a));
  const floor = Math.max(state.deviceSequence ?? 0, ...state.releases.map((r) => r.minSequence ?? 0));
  if (release.sequence < floor) {
    return { ok: false, detail: `release ${release.version} has sequence ${release.sequence}, below the floor ${floor} (no rollback: a downgrade is a new release of the old image with a higher sequence)` };
  }
  return { ok: true, firmware: { version: release.version, digest, release: { sequence: release.sequence, manifestSha256: release.manifestSha256 } } };
}
