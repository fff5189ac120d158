import { sha256 } from '../../ca/digest.ts';
import type { DomainError } from '../../errors/domain-error.ts';
import { AttestationError, MAX_ATTESTATION_OBJECT } from '../../pki/attestation/attestation-object.ts';
import type { AttestationEvidence } from '../../pki/attestation/format.ts';
import { ATTESTATION_FORMATS } from '../../pki/attestation/formats.ts';
import type { AuditEntry } from '../../registry/audit/audit-log.ts';
import { attest } from '../../registry/enrollment/attest.ts';
import type { AttestationBasis } from '../../registry/enrollment/types.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import type { AcmeAuthorizationRecord, AcmeOrderRecord } from '../../store/types.ts';
import { ownAuthorization } from './authorization.ts';
import { accountOf, type AcmeCall, type AcmeHandler, type AcmeReply } from './context.ts';
import { pendingOf } from './identifiers.ts';
import { jsonPayload } from './jws.ts';
import { acmeProblem, domainProblem } from './problems.ts';
import { AUTHORIZATION_MOVES, ORDER_MOVES } from './states.ts';
import { challengeView } from './views.ts';

/** The challenge, with a link up to its authorization (RFC 8555 7.5.1). */
function reply(call: AcmeCall, authz: AcmeAuthorizationRecord): AcmeReply {
  return { status: 200, body: challengeView(authz, call.urls), links: [{ url: call.urls.authorization(authz.id), rel: 'up' }] };
}

/**
 * POST /acme/chall/<id> with {"attObj": base64url(CBOR)} (docs/device-makers/protocol.md,
 * draft-ietf-acme-device-attest): the registration authority decides at
 * once (registry/enrollment/attest.ts). A malformed object is bad input
 * (400, nothing written). On success the authorization is valid and the
 * order ready and bound to the attested key; on a refusal the challenge,
 * authorization and order become invalid with the problem (a
 * badAttestationStatement naming the check, or a 409 fork), stored and
 * answered. POST-as-GET reads the challenge.
 */
export const challengePost: AcmeHandler = async (call) => {
  const { deps, now } = call;
  const { authz, order } = await ownAuthorization(call, call.params.id!);
  const payload = jsonPayload(call.jws!);
  if (!payload) return reply(call, authz);
  if (authz.challengeStatus === 'valid' && order.status !== 'invalid') return reply(call, authz);
  if (authz.challengeStatus !== 'pending' || order.status !== 'pending') throw acmeProblem.malformed(`the challenge is ${authz.challengeStatus} and its order ${order.status}`);
  const evidence = parseAttestation(payload.attObj);
  const account = accountOf(call);
  const request = {
    pending: pendingOf(order),
    requester: { actor: `acme:${account.id}`, data: { account: account.id } },
    evidence,
    challenge: { keyAuthorization: `${authz.token}.${account.thumbprint}`, rpIdHash: sha256(deps.identity.publicHost), token: authz.token },
    now,
  };
  const outcome = await deps.audit.record(deps.store, async (tx) => {
    const decided = await attest<ChallengeOutcome>(tx, deps.logger, request, {
      accepted: (tx2, basis) => accept(tx2, call, authz, order, basis),
      refused: (tx2, error) => invalidate(tx2, call, authz, order, error),
    });
    return { value: decided.value, events: decided.events };
  });
  if (outcome.error) throw domainProblem(outcome.error);
  return reply(call, outcome.authz);
};

/** The attestation object, parsed by its format before anything is written: a malformed one is bad input (400), the challenge stays pending. */
function parseAttestation(value: unknown): AttestationEvidence {
  const maxText = Math.ceil((MAX_ATTESTATION_OBJECT * 4) / 3);
  if (typeof value !== 'string' || value.length === 0 || value.length > maxText || !/^[A-Za-z0-9_-]+$/.test(value)) {
    throw acmeProblem.malformed(`device-attest-01 needs {"attObj": base64url of at most ${MAX_ATTESTATION_OBJECT} bytes of CBOR}`);
  }
  try {
    return ATTESTATION_FORMATS.parse(Buffer.from(value, 'base64url'));
  } catch (err) {
    if (err instanceof AttestationError) throw acmeProblem.malformed(`the attestation object is malformed: ${err.message}`);
    throw err;
  }
}

type ChallengeOutcome = { authz: AcmeAuthorizationRecord; order: AcmeOrderRecord; error?: DomainError };

/** The order ready and bound to what the attestation established, the authorization valid; the account's first accepted attestation records it. */
async function accept(tx: EnrollmentStore, call: AcmeCall, authz: AcmeAuthorizationRecord, order: AcmeOrderRecord, basis: AttestationBasis) {
  const account = accountOf(call);
  const move = ORDER_MOVES.attested;
  const fields = { attestedSpki: basis.spki, attestedBy: basis.attestedBy ?? undefined, replacesClaimed: order.replaces !== null, ...(basis.firmware ? { firmware: basis.firmware } : {}) };
  // The account matters from its first accepted attestation: only then is it in the audit log.
  const moved = await tx.acme.moveOrderAndAuthorization({ id: order.id, ...move, fields }, { id: authz.id, ...AUTHORIZATION_MOVES.validated }, account.recorded ? null : account.id, call.now);
  if (!moved) throw acmeProblem.malformed('the order is no longer pending');
  const events: AuditEntry[] = moved.recorded
    ? [{ action: 'acme.account-created', actor: `acme:${account.id}`, data: { account: account.id, thumbprint: account.thumbprint, createdAt: account.createdAt.toISOString() } }]
    : [];
  return { value: { authz: moved.authz, order: moved.order } as ChallengeOutcome, events };
}

/** Marks the challenge, its authorization and its order invalid with the refusal's problem, stored as the answer will be. */
async function invalidate(tx: EnrollmentStore, call: AcmeCall, authz: AcmeAuthorizationRecord, order: AcmeOrderRecord, error: DomainError): Promise<ChallengeOutcome> {
  const document = domainProblem(error).document();
  const refused = AUTHORIZATION_MOVES.refused;
  const invalidAuthz = (await tx.acme.moveAuthorization(authz.id, refused.from, refused.to, refused.challenge, call.now, document)) ?? authz;
  const invalidOrder = (await tx.acme.moveOrder(order.id, ORDER_MOVES.invalidated.from, ORDER_MOVES.invalidated.to, call.now, { error: document })) ?? order;
  return { authz: invalidAuthz, order: invalidOrder, error };
}
