import type { AcmeStore } from '../../store/acme-store.ts';

/** ACME state ended this long ago goes: an order without certificate, an account no device attested through. */
export const ACME_STATE_KEPT_MS = 24 * 3600 * 1000;
const ROWS_PER_ROUND = 1000;
const MAX_ROUNDS = 100;

/**
 * Deletes what ACME clients left behind: expired nonces, orders that ended
 * (or expired) a day ago without a certificate, and accounts never recorded
 * (no device attested through them) that are a day old and hold no order.
 * Orders that issued a certificate and recorded accounts stay: revokeCert
 * and the audit log name them. In rounds, so one run never holds locks long.
 */
export async function purgeAcmeState(store: { acme: Pick<AcmeStore, 'purgeNonces' | 'purgeExpired'> }, now: Date): Promise<{ nonces: number; orders: number; accounts: number }> {
  const nonces = await store.acme.purgeNonces(now);
  const before = new Date(now.getTime() - ACME_STATE_KEPT_MS);
  let orders = 0;
  let accounts = 0;
  for (let round = 0; round < MAX_ROUNDS; round += 1) {
    const purged = await store.acme.purgeExpired(now, before, before, ROWS_PER_ROUND);
    orders += purged.orders;
    accounts += purged.accounts;
    if (purged.orders < ROWS_PER_ROUND && purged.accounts < ROWS_PER_ROUND) break;
  }
  return { nonces, orders, accounts };
}
