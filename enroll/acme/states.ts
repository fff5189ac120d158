import type { AuthorizationStatus, ChallengeStatus, OrderStatus } from '../../store/types.ts';

/**
 * The state machines of RFC 8555 7.1.6, each move in one place. Validation
 * and issuance are synchronous here, so a challenge passes through
 * `processing` and an order through `processing` inside one transaction.
 */
export const ORDER_MOVES = {
  /** The attestation succeeded: the order may be finalized. */
  attested: { from: ['pending'], to: 'ready' },
  /** Issued (ready -> processing -> valid in one transaction). */
  issued: { from: ['ready'], to: 'valid' },
  /** A refused attestation or CSR, an authorization deactivated, or the order expired. */
  invalidated: { from: ['pending', 'ready'], to: 'invalid' },
} as const satisfies Record<string, { from: readonly OrderStatus[]; to: OrderStatus }>;

export const AUTHORIZATION_MOVES = {
  validated: { from: ['pending'], to: 'valid', challenge: 'valid' },
  refused: { from: ['pending'], to: 'invalid', challenge: 'invalid' },
  deactivated: { from: ['pending', 'valid'], to: 'deactivated', challenge: 'invalid' },
  expired: { from: ['pending'], to: 'expired', challenge: 'invalid' },
} as const satisfies Record<string, { from: readonly AuthorizationStatus[]; to: AuthorizationStatus; challenge: ChallengeStatus }>;

/** How long a new order and its authorization live: an enrollment takes seconds. */
export const ORDER_LIFETIME_MS = 60 * 60 * 1000;
