import type { Store } from '../../store/store.ts';
import type { CertificateRecord, DeviceRecord } from '../../store/types.ts';
import { cloneSignalEvents } from '../reports/clone-signals.ts';
import { enrollmentError, type Refusal } from './errors.ts';

/**
 * RFC 9773 `replaces`: the certificate must be this device's newest
 * operational certificate, with no successor and no live claim by another
 * pending enrollment. Anything else is refused; a second claim or a
 * successor is a lineage fork (alreadyReplaced), another device's
 * certificate a clone signal: both with events for the audit log, which the
 * caller records (or drops, when nothing is proved yet).
 */
export async function replaceRefusal(tx: Pick<Store, 'certificates' | 'acme'>, replaced: CertificateRecord, device: DeviceRecord, pendingId: string | null, actor: string, now: Date): Promise<Refusal | undefined> {
  if (replaced.kind !== 'operational') return { error: enrollmentError.malformed('replaces must name an operational certificate'), events: [] };
  if (replaced.deviceSerial !== device.serial) {
    return {
      error: enrollmentError.malformed(`replaces names a certificate of another device, not of ${device.serial}`),
      events: cloneSignalEvents([device.serial, replaced.deviceSerial!], actor, {
        reason: "an order for this device names another device's certificate in replaces", orderFor: device.serial, certificateOf: replaced.deviceSerial, certificateSerial: replaced.serial,
      }),
    };
  }
  const successor = await tx.certificates.superseded(device.serial, replaced.serial, replaced.sha256);
  const claims = (await tx.acme.liveClaims(replaced.serial, now)).filter((o) => o.id !== pendingId);
  if (!successor && claims.length === 0) return undefined;
  const detail = successor ? `certificate ${replaced.serial} already has a successor` : `certificate ${replaced.serial} is claimed by another order`;
  return {
    error: enrollmentError.alreadyReplaced(detail),
    events: [{
      action: 'device.lineage-fork', actor, device: device.serial,
      data: { replaces: replaced.serial, reason: detail, ...(pendingId ? { order: pendingId } : {}), claimedBy: claims.map((o) => o.id) },
    }],
  };
}
