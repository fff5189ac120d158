import { randomBytes } from 'node:crypto';
import type { Store } from '../../store/store.ts';
import type { AcmeAccountRecord } from '../../store/types.ts';
import type { AcmeHandler } from './context.ts';

/** How long a nonce may wait for its request. */
export const NONCE_LIFETIME_MS = 60 * 60 * 1000;

/** 128 random bits (RFC 8555 6.5.1 asks for enough entropy that nonces are not guessable). */
export function newNonceValue(): string {
  return randomBytes(16).toString('base64url');
}

/** HEAD (200) and GET (204) /acme/new-nonce (RFC 8555 7.2): the front end adds the Replay-Nonce. */
export const newNonce: AcmeHandler = async () => ({ status: 200, headers: { 'Cache-Control': 'no-store' } });
export const newNonceGet: AcmeHandler = async () => ({ status: 204, headers: { 'Cache-Control': 'no-store' } });

/** How many nonces the in-memory book keeps at most: beyond it the oldest go (their clients get badNonce and retry). */
export const MEMORY_NONCES_MAX = 100_000;

/**
 * Where nonces live (RFC 8555 6.5: each is used once). `redeem` takes the
 * presented nonce, records the next one and, for a kid-signed request,
 * reads the account: `fresh` is false when the nonce is unknown, used or
 * expired.
 */
export interface NonceBook {
  issue(value: string, now: Date): Promise<void>;
  redeem(value: string, next: string, now: Date, accountId: string | null): Promise<{ fresh: boolean; account: AcmeAccountRecord | undefined }>;
}

/** Nonces in the database: any server process on it may redeem what another handed out (PostgreSQL). */
export function databaseNonces(store: Pick<Store, 'acme'>): NonceBook {
  const expiry = (now: Date) => new Date(now.getTime() + NONCE_LIFETIME_MS);
  return {
    issue: (value, now) => store.acme.issueNonce(value, expiry(now)),
    redeem: (value, next, now, accountId) => store.acme.redeemNonce(value, next, now, expiry(now), accountId),
  };
}

/**
 * Nonces in this process's memory, for a database only this process opens
 * (PGlite): no write per request. Nonces are kept in the order they were
 * handed out, which is the order they expire in, so the expired and the
 * oldest leave from the front. A restart forgets them: clients get badNonce
 * and retry with the fresh one it carries.
 */
export class MemoryNonces implements NonceBook {
  private readonly expiresAt = new Map<string, number>();

  constructor(
    private readonly store: Pick<Store, 'acme'>,
    private readonly max = MEMORY_NONCES_MAX,
  ) {}

  async issue(value: string, now: Date): Promise<void> {
    this.add(value, now.getTime());
  }

  async redeem(value: string, next: string, now: Date, accountId: string | null): Promise<{ fresh: boolean; account: AcmeAccountRecord | undefined }> {
    const expires = this.expiresAt.get(value);
    const fresh = expires !== undefined && expires > now.getTime();
    if (expires !== undefined) this.expiresAt.delete(value);
    this.add(next, now.getTime());
    return { fresh, account: fresh && accountId !== null ? await this.store.acme.account(accountId) : undefined };
  }

  private add(value: string, now: number): void {
    for (const [oldest, expires] of this.expiresAt) {
      if (expires > now && this.expiresAt.size < this.max) break;
      this.expiresAt.delete(oldest);
    }
    this.expiresAt.set(value, now + NONCE_LIFETIME_MS);
  }
}
