import type { Knex } from 'knex';
import type { Store } from './store.ts';

/**
 * The raw connection behind a Store, for tests that play an attacker with
 * database access (bypassing triggers, editing rows). Nothing else uses it.
 */
export function rawConnection(store: Store): Knex {
  return (store as unknown as { db: Knex }).db;
}
