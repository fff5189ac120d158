import type { FirmwareState } from '../../store/device-store.ts';
import type { ApprovedRelease, FirmwareReport } from '../../store/types.ts';

/** Check 5's verdict: the firmware to record (with the release it maps to), or why not. */
export type FirmwareDecision =
  | { ok: true; firmware: FirmwareReport | null }
  | { ok: false; detail: string; withdrawn?: { version: string; digest: string } };

/**
 * Whether the model has a firmware policy: a signed release (withdrawn or
 * not), or a legacy release (a former allowlist entry) that was not
 * withdrawn. A model whose allowlist was emptied ([]) has none, as before.
 */
function hasPolicy(releases: readonly ApprovedRelease[]): boolean {
  return releases.some((r) => !r.legacy || !r.withdrawn);
}

/**
 * Check 5, the verified update path (docs/operators/firmware.md): where the
 * model has releases, the device must report firmware, its digest must map
 * to an approved release that is not withdrawn (a digest maps to its newest
 * such release), and that release's sequence may not be below the floor,
 * the higher of the device's last attested sequence and the model's highest
 * minSequence: no rollback. A downgrade is a new release of the old image
 * with a higher sequence, approved like any other. Legacy releases (the
 * former allowlist, unsigned, sequence 0) count until the model's legacy
 * cut-off, and never after a device ran a signed release.
 */
export function updatePathDecision(state: FirmwareState, reported: FirmwareReport | null, now: Date): FirmwareDecision {
  if (!hasPolicy(state.releases)) return { ok: true, firmware: reported };
  if (!reported) return { ok: false, detail: 'the model has firmware releases and the attestation reports no firmware' };
  const digest = reported.digest.toLowerCase();
  const matching = state.releases.filter((r) => r.digest === digest);
  const live = matching.filter((r) => !r.withdrawn);
  const cutoff = state.legacyUntil;
  const current = live.filter((r) => !r.legacy || cutoff === null || now < cutoff);
  if (current.length === 0) {
    if (live.length > 0) {
      return { ok: false, detail: `firmware ${digest} is legacy release ${live.at(-1)!.version} (unsigned), accepted only until the model's legacy cut-off ${cutoff!.toISOString()}: update to a signed release` };
    }
    if (matching.length > 0) {
      const version = matching.at(-1)!.version;
      return { ok: false, detail: `firmware ${digest} is release ${version}, which was withdrawn: update to an approved release`, withdrawn: { version, digest } };
    }
    return { ok: false, detail: `firmware ${reported.version} with digest ${digest} is no approved release of the model` };
  }
  // A signed release wins over a legacy one of the same image; among signed ones, the newest.
  const release = current.reduce((a, b) => (b.legacy === a.legacy ? (b.sequence > a.sequence ? b : a) : (a.legacy ? b : a)));
  const floor = Math.max(state.deviceSequence ?? 0, ...state.releases.filter((r) => !r.legacy).map((r) => r.minSequence ?? 0));
  if (release.sequence < floor) {
    const what = release.legacy ? `legacy release ${release.version} (unsigned, sequence 0)` : `release ${release.version} has sequence ${release.sequence},`;
    return { ok: false, detail: `${what} below the floor ${floor} (no rollback: a downgrade is a new release of the old image with a higher sequence)` };
  }
  return { ok: true, firmware: { version: release.version, digest, release: { sequence: release.sequence, manifestSha256: release.manifestSha256 } } };
}
