import { notFound } from '../../errors/domain-error.ts';
import type { FirmwareOverviewStore } from '../../store/subsets.ts';

/** The models that have firmware releases, with how many of each status: the console's Firmware index. */
export async function firmwareModels(store: FirmwareOverviewStore) {
  return { models: await store.firmwareReleases.summaryByModel() };
}

/**
 * One model's firmware page (docs/operators/console.md#firmware): its
 * releases, newest first, each with its proposal, approval, signer and
 * manifest, its withdrawal, and how many devices run it now (the release
 * their newest certificate was issued on, counted per model by an indexed
 * query, devices_model_firmware: never a scan of the fleet); the legacy
 * cut-off; and the devices whose last report maps to no listed release.
 */
export async function firmwareOverview(store: FirmwareOverviewStore, model: string, now: Date) {
  if (!(await store.models.byName(model))) throw notFound(`no model ${model}`);
  const [releases, counts, until] = await Promise.all([store.firmwareReleases.byModel(model), store.devices.firmwareCounts(model), store.models.legacyFirmwareUntil(model)]);
  const listed = new Set(releases.map((r) => r.version));
  return {
    model,
    legacyUntil: until?.toISOString() ?? null,
    legacyPassed: until !== null && until <= now,
    releases: releases.reverse().map((r) => ({
      version: r.version, digest: r.digest, size: r.legacy ? null : r.size, sequence: r.sequence, minSequence: r.minSequence, legacy: r.legacy,
      status: r.withdrawnAt ? 'withdrawn' : r.approvedAt ? 'approved' : 'proposed',
      proposal: r.proposal, proposedBy: r.proposedBy, proposedAt: r.proposedAt.toISOString(),
      approvedBy: r.approvedBy, approvedAt: r.approvedAt?.toISOString() ?? null,
      signer: r.signerCertificateSerial, manifestSha256: r.manifestSha256,
      withdrawnBy: r.withdrawnBy, withdrawnAt: r.withdrawnAt?.toISOString() ?? null, withdrawReason: r.withdrawReason,
      devices: counts.get(r.version) ?? 0,
    })),
    otherDevices: [...counts].filter(([version]) => !listed.has(version)).reduce((sum, [, n]) => sum + n, 0),
  };
}
