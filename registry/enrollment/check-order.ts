import type { DeviceName } from '../../ca/profiles.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import type { CertificateRecord, DeviceRecord } from '../../store/types.ts';
import { mayEnroll } from '../lifecycle/device-states.ts';
import { checkDeviceName } from './device-name.ts';
import { enrollmentError } from './errors.ts';
import { replaceRefusal } from './replaces.ts';

/**
 * Whether a device may start an enrollment (docs/device-makers/protocol.md,
 * docs/operators/lifecycle.md): known, in a state that may enroll, with a
 * live birth certificate of ours (one born elsewhere has its birth
 * certificate checked at the attestation). While other manufacturers are
 * registered an unknown serial may start too (null): its attestation then
 * shows whether a genuine device that is not ours tried to enroll
 * (docs/operators/manufacturers.md).
 */
export async function enrollableDevice(store: Pick<EnrollmentStore, 'devices' | 'certificates' | 'manufacturers'>, serial: string): Promise<DeviceRecord | null> {
  const device = await store.devices.find(serial);
  if (!device) {
    if (await store.manufacturers.anyActive()) return null;
    throw enrollmentError.rejectedIdentifier(`no device ${serial} has a birth certificate from this CA`);
  }
  if (!mayEnroll(device.state)) throw enrollmentError.rejectedIdentifier(`device ${serial} is ${device.state}: enrollment and renewal are refused`);
  if (device.manufacturer !== 'self') return device;
  const birth = await store.certificates.newestOfDevice(serial, 'birth');
  if (!birth || birth.revokedAt || birth.keySha256 !== device.factoryKeySha256) {
    throw enrollmentError.rejectedIdentifier(`device ${serial} has no live birth certificate`);
  }
  return device;
}

/**
 * A new enrollment for `serial`, replacing the certificate `replaces`
 * resolves to (RFC 9773) when given, naming the device as `naming` says
 * (device-name.ts): throws the domain error that refuses it, and returns
 * the device (null: unknown, see enrollableDevice) and the certificate
 * replaced. A request proves nothing
 * (anyone may name a public certificate), so a refused `replaces` writes
 * no clone or fork event here; the attestation checks it again and records
 * a fork once the device has proved itself.
 */
export async function checkOrder(
  store: EnrollmentStore, serial: string, replaces: (() => Promise<CertificateRecord>) | undefined, now: Date,
  naming?: { name: DeviceName; assignerOid: string | undefined },
): Promise<{ device: DeviceRecord | null; replaced?: CertificateRecord }> {
  const device = await enrollableDevice(store, serial);
  if (naming) await checkDeviceName(store, device, serial, naming.name, naming.assignerOid);
  if (!replaces) return { device };
  if (!device) throw enrollmentError.malformed(`device ${serial} has no certificate to replace`);
  const replaced = await replaces();
  const refusal = await replaceRefusal(store, replaced, device, null, `device:${serial}`, now);
  if (refusal) throw refusal.error;
  return { device, replaced };
}
