import { LOCKS } from '../../store/locks.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import type { GatewayPath } from './types.ts';

/**
 * Why a gateway may not mediate or relay now, or undefined (RFC 7030 3.7,
 * docs/operators/gateways.md): only an active device of a gateway class,
 * authenticated by its newest operational certificate, live and unexpired.
 * Checked when the request comes and again in the issuance transaction,
 * under the gateway's lock, which revoking, suspending or quarantining the
 * gateway also takes: what it mediated is revoked with it, so nothing it
 * mediates may commit after.
 */
export async function gatewayProblem(tx: EnrollmentStore, gateway: Pick<GatewayPath, 'serial' | 'certificateSha256'>, now: Date): Promise<string | undefined> {
  await tx.lock(LOCKS.device(gateway.serial));
  const found = await tx.devices.getWithClass(gateway.serial).catch(() => undefined);
  if (!found) return `no gateway ${gateway.serial}`;
  const { device, deviceClass } = found;
  if (!deviceClass.gateway) return `device ${gateway.serial} is of class ${deviceClass.name}, which is not a gateway class`;
  if (device.state !== 'active') return `gateway ${gateway.serial} is ${device.state}: only an active gateway mediates`;
  const certificate = await tx.certificates.bySha256(gateway.certificateSha256);
  if (!certificate || certificate.kind !== 'operational' || certificate.deviceSerial !== gateway.serial) return `the client certificate is not an operational certificate of gateway ${gateway.serial}`;
  if (certificate.revokedAt) return `the gateway's certificate ${certificate.serial} is revoked`;
  if (certificate.notAfter <= now) return `the gateway's certificate ${certificate.serial} expired at ${certificate.notAfter.toISOString()}`;
  const newest = await tx.certificates.newestOfDevice(gateway.serial, 'operational');
  if (newest?.serial !== certificate.serial) return `the gateway's certificate ${certificate.serial} is not its newest: authenticate with the newest`;
  return undefined;
}
