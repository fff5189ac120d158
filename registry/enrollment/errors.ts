import { DomainError } from '../../errors/domain-error.ts';
import type { AuditEntry } from '../audit/audit-log.ts';

/**
 * The registration authority's refusals, as domain errors with a code
 * (errors/domain-error.ts): each front end maps them to its own protocol
 * (ACME: enroll/acme/problems.ts).
 */
export const enrollmentError = {
  /** The device named may not enroll or renew now. */
  rejectedIdentifier: (detail: string) => new DomainError('forbidden', detail, {}, 'rejectedIdentifier'),
  /** An attestation failed a check: the detail is "<check>: <why>". */
  badAttestation: (check: string, detail: string) => new DomainError('forbidden', `${check}: ${detail}`, {}, 'badAttestation'),
  /** The certificate to be succeeded has, or is claimed for, a successor: a lineage fork. */
  alreadyReplaced: (detail: string) => new DomainError('conflict', detail, {}, 'alreadyReplaced'),
  /** What an accepted attestation rested on changed before issuance. */
  basisChanged: (detail: string) => new DomainError('forbidden', detail, {}, 'basisChanged'),
  badCsr: (detail: string) => new DomainError('badCSR', detail),
  malformed: (detail: string) => new DomainError('malformed', detail),
};

/** A refusal decided inside a transaction: its error, and the events to record with it. */
export interface Refusal {
  error: DomainError;
  events: AuditEntry[];
}
