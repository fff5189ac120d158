import { createHash } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import { DomainError } from '../../errors/domain-error.ts';
import type { VerifiedCsr } from '../../pki/csr.ts';
import { enrollWithCertificate } from '../../registry/enrollment/certificate-enrollment.ts';
import type { RelayedAttestation } from '../../registry/enrollment/gateway-enrollment.ts';
import { enrollmentError } from '../../registry/enrollment/errors.ts';
import { parseRelayedEvidence, relayedAttestation } from '../../registry/enrollment/relayed-attestation.ts';
import type { DeviceClassRecord } from '../../store/types.ts';
import { attestationOf, ID_AA_ATTESTATION } from './attestation-attribute.ts';
import { bindingProblem, challengePasswordOf } from './channel-binding.ts';
import { certsOnly } from './cms.ts';
import { CHALLENGE_PASSWORD } from './csrattrs.ts';
import type { EstDeps } from './deps.ts';
import { EstError, domainEstError } from './errors.ts';

/** simpleenroll authenticates with the birth certificate, simplereenroll with the newest operational one. */
export type EnrollOperation = 'simpleenroll' | 'simplereenroll';

const classRefusal = (deviceClass: DeviceClassRecord) => (deviceClass.est ? undefined : `device class ${deviceClass.name} does not allow EST enrollment`);

/**
 * Who asks, before anything they send is read: a TLS 1.3 session with a
 * client certificate (its DER), else 403.
 */
export function clientCertificate(socket: TLSSocket, operation: EnrollOperation | 'nonce'): Buffer {
  if (socket.getProtocol() !== 'TLSv1.3') throw new EstError(403, 'EST enrollment needs TLS 1.3 (the channel binding is tls-exporter, RFC 9266)');
  const client = socket.getPeerX509Certificate();
  const which = operation === 'simpleenroll' ? 'birth certificate' : operation === 'nonce' ? 'gateway\'s newest operational certificate' : 'newest operational certificate';
  if (!client) throw new EstError(403, `${operation} needs a TLS client certificate: the device's ${which}`);
  return client.raw;
}

/** A relay refused before the transaction looks at it (no nonce, a malformed attribute): refused in it, and audited. */
function refusedRelay(error: DomainError): RelayedAttestation {
  return { check: async () => ({ error, events: [] }) };
}

/**
 * POST simpleenroll / simplereenroll (RFC 7030 4.2): a TLS 1.3 client
 * certificate, then the registration authority
 * (registry/enrollment/certificate-enrollment.ts) with the CSR, whose
 * binding to the session is this front end's check. A gateway's CSR for a
 * device behind it (docs/operators/gateways.md) needs no binding: with an
 * id-aa-attestation attribute it is a relayed attestation whose nonce is
 * the challengePassword, without one a mediated enrollment. The answer is
 * the new certificate as a certs-only CMS (4.2.3); a retry gets the
 * certificate already issued.
 */
export async function enroll(deps: EstDeps, socket: TLSSocket, operation: EnrollOperation, client: Buffer, der: Buffer, label: string | undefined): Promise<string> {
  const basis = operation === 'simpleenroll' ? 'birth' : 'operational';
  const now = deps.clock();
  const requester = { protocol: 'est', operation };
  // The CSR is bound to this session (checked by the registration authority's call, so a refusal of a known device is audited).
  const outcome = await enrollWithCertificate({ ...deps, log: deps.logger }, {
    basis, certificate: client, csr: der.toString('base64url'), classRefusal, now,
    frontEndAttributes: [CHALLENGE_PASSWORD, ID_AA_ATTESTATION], frontEndCheck: (csr) => bindingProblem(csr.request, socket),
    requester: { data: requester }, ...(label !== undefined ? { className: label } : {}),
    relayed: (csr, serial) => relayOf(deps, csr, serial, requester, now),
    evidence: (csr) => ownEvidence(csr, deps.identity.publicHost),
  });
  if (!outcome.ok) throw domainEstError(outcome.error);
  return certsOnly([outcome.certificate.der]);
}

/** A gateway's CSR with an attestation: the relayed attestation, its nonce in challengePassword; none without the attribute. */
function relayOf(deps: EstDeps, csr: VerifiedCsr, serial: string, requester: Record<string, unknown>, now: Date): RelayedAttestation | undefined {
  const attObj = attestationOf(csr.request);
  if (attObj === undefined) return undefined;
  if (!Buffer.isBuffer(attObj)) return refusedRelay(enrollmentError.badCsr(attObj.problem));
  const nonce = challengePasswordOf(csr.request);
  if (nonce === undefined || nonce.length === 0 || nonce.length > 128) return refusedRelay(enrollmentError.badCsr('a relayed attestation carries its nonce (from POST nonce) as the CSR\'s challengePassword'));
  return relayedAttestation({ log: deps.logger, publicHost: deps.identity.publicHost }, { serial, nonce, evidence: parseRelayedEvidence(attObj), requester, now });
}

/**
 * The device's own attestation in its CSR (firmware evidence), bound to this
 * session: the challengePassword (the tls-exporter binding) stands for the
 * key authorization. Undefined without the attribute.
 */
function ownEvidence(csr: VerifiedCsr, publicHost: string) {
  const attObj = attestationOf(csr.request);
  if (attObj === undefined) return undefined;
  if (!Buffer.isBuffer(attObj)) return enrollmentError.badCsr(attObj.problem);
  const evidence = parseRelayedEvidence(attObj);
  if (evidence instanceof DomainError) return evidence;
  const binding = challengePasswordOf(csr.request) ?? '';
  return { evidence, challenge: { keyAuthorization: binding, token: binding, rpIdHash: createHash('sha256').update(publicHost).digest() } };
}
