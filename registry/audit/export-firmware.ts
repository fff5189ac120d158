import type { AuditExportStore } from '../../store/subsets.ts';

type FirmwareExportStore = Pick<AuditExportStore, 'firmware' | 'firmwareReleases'>;

/**
 * The firmware part of the auditor's export (docs/auditors/audit-log.md#firmware-in-the-export):
 * a `firmware` line per step of each exported device's firmware lineage,
 * then a `firmware-manifest` line per signed release those steps name,
 * with its SUIT envelope, so the lineage verifies offline
 * (registry/audit/export-firmware-verify.ts). Kept apart from
 * audit-export.ts, which calls it once per page of devices and once at the end.
 */
export class FirmwareExport {
  /** The manifest hashes the exported lineage names. */
  private readonly named = new Set<string>();

  constructor(private readonly store: FirmwareExportStore) {}

  /** The `firmware` lines of a page of devices, each device's steps in order. */
  async lineageLines(serials: readonly string[]): Promise<Array<Record<string, unknown>>> {
    return (await this.store.firmware.byDevices(serials)).map((step) => {
      if (step.release?.manifestSha256) this.named.add(step.release.manifestSha256);
      return {
        type: 'firmware', device: step.deviceSerial, version: step.version, digest: step.digest, certificateSerial: step.certificateSerial,
        attestedAt: step.attestedAt.toISOString(), release: step.release ?? null,
      };
    });
  }

  /** A `firmware-manifest` line per signed release named so far: its envelope (base64) and the hash histories name it by. */
  async manifestLines(): Promise<Array<Record<string, unknown>>> {
    return (await this.store.firmwareReleases.byManifests([...this.named].sort())).map((release) => ({
      type: 'firmware-manifest', model: release.model, version: release.version, sequence: release.sequence, manifestSha256: release.manifestSha256,
      signer: release.signerCertificateSerial, envelope: release.envelope!.toString('base64'),
    }));
  }
}
