import type { Knex } from 'knex';
import { StoreConflictError } from './types.ts';

/** Row helpers shared by the stores: PGlite returns Uint8Array where pg returns Buffer. */

export function toBuffer(value: unknown): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  throw new TypeError('expected a binary column');
}

export function toDate(value: unknown): Date {
  return value instanceof Date ? value : new Date(String(value));
}

export function toDateOrNull(value: unknown): Date | null {
  return value === null || value === undefined ? null : toDate(value);
}

export function toStringOrNull(value: unknown): string | null {
  return value === null || value === undefined ? null : String(value);
}

/** Postgres unique_violation, from pg or PGlite. */
export function isUniqueViolation(err: unknown): err is { constraint?: string } {
  return typeof err === 'object' && err !== null && (err as { code?: string }).code === '23505';
}

/** Runs a write; a unique violation becomes a StoreConflictError with the given message. */
export async function conflictsAsStoreErrors<T>(query: PromiseLike<T>, message: string): Promise<T> {
  try {
    return await query;
  } catch (err) {
    if (isUniqueViolation(err)) throw new StoreConflictError(message, err.constraint);
    throw err;
  }
}

/** Rows in a table: the tests count before and after a refused request. */
export async function countRows(db: Knex | Knex.Transaction, table: string): Promise<number> {
  const row = await db(table).count({ n: '*' }).first();
  return Number(row?.n ?? 0);
}
