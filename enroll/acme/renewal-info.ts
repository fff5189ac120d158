import { certificateByCertId } from './cert-id.ts';
import type { AcmeDeps, AcmeHandler } from './context.ts';
import { acmeProblem } from './problems.ts';

/** How often a client asks again: a twelfth of the validity, from one minute to six hours. */
function retryAfterSeconds(lifetimeMs: number): number {
  return Math.round(Math.min(6 * 3600, Math.max(60, lifetimeMs / 12 / 1000)));
}

/**
 * The firmware a certificate was issued on has been withdrawn from its
 * model's allowlist (docs/operators/lifecycle.md). A first allowlist, or one that never
 * listed the firmware, asks nothing: check 5 decides at the next renewal.
 */
async function firmwareWithdrawn(store: AcmeDeps['store'], model: string, certificateSerial: string): Promise<boolean> {
  const firmware = await store.firmware.ofCertificate(certificateSerial);
  return firmware !== undefined && store.firmware.isWithdrawn(model, firmware);
}

/**
 * GET /acme/renewal-info/<certID> (RFC 9773), unauthenticated and cacheable:
 * a window from two-thirds to five-sixths of the validity, or a window in
 * the past when the certificate must be replaced now (it, or the device's
 * birth certificate, is revoked; the device is quarantined after a batch
 * compromise; the firmware it was issued on left its model's allowlist).
 */
export const renewalInfo: AcmeHandler = async (call) => {
  const { store, hierarchy } = call.deps;
  const certificate = await certificateByCertId(call.params.certId, hierarchy, store.certificates);
  if (certificate.kind !== 'operational' || !certificate.deviceSerial) throw acmeProblem.notFound('operational certificate for this certID');
  const device = await store.devices.find(certificate.deviceSerial);
  const birth = await store.certificates.newestOfDevice(certificate.deviceSerial, 'birth');
  const now = call.now.getTime();
  const start = certificate.notBefore.getTime();
  const lifetime = certificate.notAfter.getTime() - start;
  const replaceNow = certificate.revokedAt !== null || device?.state === 'quarantined' || (birth !== undefined && birth.revokedAt !== null)
    || (device !== undefined && await firmwareWithdrawn(store, device.model, certificate.serial));
  const window = replaceNow
    ? { start: new Date(Math.min(start, now - 3600_000)), end: new Date(now) }
    : { start: new Date(start + (lifetime * 2) / 3), end: new Date(start + (lifetime * 5) / 6) };
  const retryAfter = replaceNow ? 60 : retryAfterSeconds(lifetime);
  return {
    status: 200,
    body: { suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() } },
    headers: { 'Retry-After': String(retryAfter), 'Cache-Control': `public, max-age=${retryAfter}` },
  };
};
