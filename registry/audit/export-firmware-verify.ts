import type { CheckedCertificate } from '../../pki/certificate-key.ts';
import { EnvelopeError, verifyEnvelope } from '../../pki/suit-envelope.ts';

type Problem = (lineNumber: number, text: string) => void;

/**
 * verify-export's firmware part (docs/auditors/audit-log.md#firmware-in-the-export):
 * each `firmware-manifest` line's envelope verifies (manifest digest, ES256
 * signature, x5chain[0] issued by a firmware intermediate of the export,
 * itself checked against the root, with id-kp-codeSigning) and its manifest
 * hash is the one the line names; every manifest hash the firmware lineage
 * names (its `firmware` lines, and the chained events of the exported
 * devices) has such a manifest. Kept apart from export-verify.ts, which
 * hands it the lines.
 */
export class FirmwareExportCheck {
  readonly counts = { firmware: 0, manifests: 0 };
  private readonly anchors: CheckedCertificate[] = [];
  private readonly devices = new Set<string>();
  /** Manifest hash -> the release whose envelope verified with it. */
  private readonly verified = new Map<string, { model: string; version: string; sequence: number }>();
  /** [line, manifest hash, what names it]: checked at the end, when every manifest is read. */
  private readonly named: Array<[number, string, string]> = [];

  /** A CA line whose certificate chained to the root: the firmware intermediates anchor the manifests. */
  ca(role: string, cert: CheckedCertificate): void {
    if (role === 'firmware') this.anchors.push(cert);
  }

  device(serial: unknown): void {
    this.devices.add(String(serial));
  }

  firmwareLine(lineNumber: number, value: Record<string, unknown>): void {
    this.counts.firmware += 1;
    const release = value.release as { manifestSha256?: unknown } | null;
    if (typeof release?.manifestSha256 === 'string') this.named.push([lineNumber, release.manifestSha256, `the firmware lineage of ${String(value.device)}`]);
  }

  manifestLine(lineNumber: number, value: Record<string, unknown>, problem: Problem): void {
    this.counts.manifests += 1;
    const what = `firmware manifest ${String(value.model)} ${String(value.version)}`;
    try {
      const envelope = verifyEnvelope(Buffer.from(String(value.envelope), 'base64'), this.anchors);
      if (envelope.manifestSha256 !== value.manifestSha256) problem(lineNumber, `${what}: its manifest hash is ${envelope.manifestSha256}, not the ${String(value.manifestSha256)} the line names`);
      else if (envelope.sequence !== value.sequence) problem(lineNumber, `${what}: the manifest's sequence is ${envelope.sequence}, not ${String(value.sequence)}`);
      else this.verified.set(envelope.manifestSha256, { model: String(value.model), version: String(value.version), sequence: envelope.sequence });
    } catch (err) {
      if (!(err instanceof EnvelopeError)) throw err;
      problem(lineNumber, `${what}: ${err.message}`);
    }
  }

  /** An event of the chain: a firmware step of an exported device names its manifest by hash. */
  event(lineNumber: number, event: { device?: unknown; action?: unknown; data?: { firmware?: { release?: { manifestSha256?: unknown } } } }): void {
    const hash = event.data?.firmware?.release?.manifestSha256;
    if (typeof hash === 'string' && this.devices.has(String(event.device))) this.named.push([lineNumber, hash, `event ${String(event.action)} of ${String(event.device)}`]);
  }

  finish(problem: Problem): void {
    for (const [lineNumber, hash, by] of this.named) {
      if (!this.verified.has(hash)) problem(lineNumber, `${by} names manifest ${hash}, and the export carries no verified manifest with that hash`);
    }
  }
}
