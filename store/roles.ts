import type { Knex } from 'knex';
import { APPEND_ONLY_TABLES } from '../migrations/append-only.ts';

/** knex's bookkeeping of applied migrations (store/database.ts), and its lock beside it. */
export const MIGRATION_TABLE = 'schema_migrations';
export const MIGRATION_TABLES = [MIGRATION_TABLE, `${MIGRATION_TABLE}_lock`] as const;

const quoted = (identifier: string) => `"${identifier.replace(/"/g, '""')}"`;

/**
 * Least privilege for the server's PostgreSQL role (docs/operators/postgresql.md, "Database roles"):
 * the schema belongs to the owner role that runs the migrations; the server's
 * role reads and writes the working tables, may only SELECT and INSERT the
 * append-only ones (the audit chain, its checkpoints, firmware and ownership
 * records), only reads the migration bookkeeping, and owns nothing, so it can
 * neither drop a table nor disable a trigger (both need ownership).
 * Idempotent: applied after every migration run, so new tables are covered.
 */
export function runtimeGrants(role: string, schema = 'public'): string[] {
  const r = quoted(role);
  const s = quoted(schema);
  const appendOnly = APPEND_ONLY_TABLES.map((t) => `${s}.${quoted(t)}`).join(', ');
  const bookkeeping = MIGRATION_TABLES.map((t) => `${s}.${quoted(t)}`).join(', ');
  return [
    `grant usage on schema ${s} to ${r}`,
    `revoke create on schema ${s} from ${r}`,
    `grant select, insert, update, delete on all tables in schema ${s} to ${r}`,
    `revoke update, delete, truncate, references, trigger on ${appendOnly} from ${r}`,
    `revoke insert, update, delete, truncate, references, trigger on ${bookkeeping} from ${r}`,
    `grant usage, select on all sequences in schema ${s} to ${r}`,
  ];
}

/** The role a connection runs as. */
export async function currentUser(db: Knex): Promise<string> {
  const { rows } = await db.raw('select current_user as me');
  return (rows as Array<{ me: string }>)[0]!.me;
}

/** Applies the grants as the owner role, in one transaction. Refuses to grant to the owner itself (nothing would be restricted). */
export async function grantRuntimeRole(owner: Knex, role: string): Promise<void> {
  if ((await currentUser(owner)) === role) {
    throw new Error(`DEVID_DATABASE_URL and DEVID_DATABASE_OWNER_URL name the same role ${role}: the server must run as a role of its own`);
  }
  await owner.transaction(async (trx) => {
    for (const statement of runtimeGrants(role)) await trx.raw(statement);
  });
}
