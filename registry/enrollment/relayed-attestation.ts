import { createHash, randomBytes } from 'node:crypto';
import { sha256Hex } from '../../ca/digest.ts';
import { DomainError } from '../../errors/domain-error.ts';
import { AttestationError } from '../../pki/attestation/attestation-object.ts';
import type { AttestationEvidence } from '../../pki/attestation/format.ts';
import { ATTESTATION_FORMATS } from '../../pki/attestation/formats.ts';
import { LOCKS } from '../../store/locks.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import type { CertificateRecord } from '../../store/types.ts';
import type { AuditEntry, AuditLog } from '../audit/audit-log.ts';
import { attest } from './attest.ts';
import { enrollmentError } from './errors.ts';
import { gatewayProblem } from './gateway-check.ts';
import type { RelayedAttestation } from './gateway-enrollment.ts';
import type { AttestationBasis, EnrollmentLog, GatewayPath } from './types.ts';

/** How long a relayed attestation's nonce lives (draft-ietf-lamps-attestation-freshness; docs/operators/gateways.md). */
export const NONCE_LIFETIME_MS = 5 * 60_000;

/** What a device signs over with a nonce: it stands for the key authorization, so SHA-256(nonce) for SHA-256(keyAuthorization). */
function challengeOf(nonce: string, publicHost: string) {
  return { keyAuthorization: nonce, token: nonce, rpIdHash: createHash('sha256').update(publicHost).digest() };
}

const REDEMPTION_PROBLEMS = {
  unknown: 'the nonce is unknown or was used already (a nonce counts once)',
  expired: 'the nonce expired (it lives 5 minutes): ask for another',
  'other-gateway': 'the nonce was issued to another gateway',
  'other-device': 'the nonce was issued for another device',
} as const;

/**
 * POST /.well-known/est/<label>/nonce by a gateway (registry side): a fresh
 * nonce for one device behind it, bound to the gateway and the serial,
 * single use, 5 minutes, kept in the database. The gateway must be allowed
 * to enroll the device now (gateway-check.ts, the declaration); a refusal
 * is audited on the gateway.
 */
export async function issueGatewayNonce(
  deps: { store: EnrollmentStore; audit: AuditLog }, request: { gateway: CertificateRecord; serial: string; className?: string; now: Date },
): Promise<{ ok: true; nonce: string; expires: Date } | { ok: false; error: DomainError }> {
  const { gateway, serial, now } = request;
  const gatewaySerial = gateway.deviceSerial!;
  const nonce = randomBytes(32).toString('base64url');
  const expires = new Date(now.getTime() + NONCE_LIFETIME_MS);
  const outcome = await deps.audit.record<{ error?: DomainError }>(deps.store, async (tx) => {
    const problem = await nonceRefusal(tx, { serial: gatewaySerial, certificateSha256: gateway.sha256 }, serial, request.className, now);
    const stored = problem === undefined && await tx.estNonces.insert({ sha256: sha256Hex(Buffer.from(nonce, 'utf8')), gatewaySerial, deviceSerial: serial, expiresAt: expires, createdAt: now });
    const reason = problem ?? (stored ? undefined : 'the gateway holds too many open nonces: use them or let them expire');
    if (reason === undefined) return { value: {}, events: [] };
    return {
      value: { error: new DomainError('forbidden', reason) },
      events: [{ action: 'gateway.nonce-refused', actor: `device:${gatewaySerial}`, device: gatewaySerial, data: { protocol: 'est', device: serial, gatewayCertificateSerial: gateway.serial, reason } }],
    };
  });
  return outcome.error ? { ok: false, error: outcome.error } : { ok: true, nonce, expires };
}

/** Why this gateway gets no nonce for this device now. */
async function nonceRefusal(tx: EnrollmentStore, gateway: Pick<GatewayPath, 'serial' | 'certificateSha256'>, serial: string, className: string | undefined, now: Date): Promise<string | undefined> {
  const problem = await gatewayProblem(tx, gateway, now);
  if (problem) return problem;
  const { deviceClass } = await tx.devices.getWithClass(gateway.serial);
  const found = await tx.devices.getWithClass(serial).catch(() => undefined);
  if (!found) return `no device ${serial}`;
  const { device, deviceClass: ownClass } = found;
  // The label names the device's class, as for its enrollment.
  if (className !== undefined && className !== ownClass.name) return `device ${serial} is of class ${ownClass.name}, not ${className}`;
  if (!ownClass.est) return `device class ${ownClass.name} does not allow EST enrollment`;
  if (!deviceClass.gateway!.models.includes(device.model)) return `gateway ${gateway.serial} (class ${deviceClass.name}) does not mediate model ${device.model}`;
  if (!(await tx.gateways.gatewaysOf(serial)).includes(gateway.serial)) return `device ${serial} is not declared with gateway ${gateway.serial}`;
  return undefined;
}

/** The attestation object a CSR carries, parsed by its format; an AttestationError is a malformed statement (badCSR). */
export function parseRelayedEvidence(attObj: Buffer): AttestationEvidence | DomainError {
  try {
    return ATTESTATION_FORMATS.parse(attObj);
  } catch (err) {
    if (err instanceof AttestationError) return enrollmentError.badCsr(`the attestation in the CSR is malformed: ${err.message}`);
    throw err;
  }
}

/**
 * A device's attestation relayed by its gateway (docs/operators/gateways.md):
 * in the gateway's transaction the nonce is used up (it must be this
 * gateway's, for this device, unexpired), then `attest` runs every check of
 * a direct enrollment with SHA-256(nonce) for the key authorization's hash.
 * The basis is then a direct one, with the gateway as its path.
 */
export function relayedAttestation(
  deps: { log: EnrollmentLog; publicHost: string }, input: { serial: string; nonce: string; evidence: AttestationEvidence | DomainError; requester: Record<string, unknown>; now: Date },
): RelayedAttestation {
  return {
    async check(tx: EnrollmentStore, gateway: GatewayPath): Promise<{ basis: AttestationBasis; events: AuditEntry[] } | { error: DomainError; events: AuditEntry[] }> {
      const { serial, now } = input;
      const redeemed = await tx.estNonces.redeem(sha256Hex(Buffer.from(input.nonce, 'utf8')), gateway.serial, serial, now);
      if (redeemed !== 'ok') return { error: new DomainError('forbidden', REDEMPTION_PROBLEMS[redeemed]), events: [] };
      if (input.evidence instanceof DomainError) return { error: input.evidence, events: [] };
      await tx.lock(LOCKS.device(serial));
      const id = `gw-${randomBytes(12).toString('base64url')}`;
      const decided = await attest<AttestationBasis | undefined>(tx, deps.log, {
        pending: { id, serial, replaces: null }, evidence: input.evidence, challenge: challengeOf(input.nonce, deps.publicHost), now,
        requester: { actor: `device:${gateway.serial}`, data: { ...input.requester, gateway: gateway.serial } },
      }, {
        accepted: async (_tx, basis) => ({ value: basis, events: [] }),
        refused: async () => undefined,
      });
      if (decided.error || !decided.value) return { error: decided.error ?? new DomainError('forbidden', 'the attestation was refused'), events: decided.events };
      return { basis: { ...decided.value, gateway }, events: decided.events };
    },
  };
}
