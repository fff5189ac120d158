import type { Knex } from 'knex';

/** Every append-only table: the server's database role may only SELECT and INSERT them (store/roles.ts). */
export const APPEND_ONLY_TABLES = ['audit_events', 'audit_checkpoints', 'device_firmware', 'ownership_transfers', 'ownership_statements', 'ocsp_responders', 'tlog_checkpoints', 'tlog_cosignatures', 'certificate_paths'] as const;

/**
 * Makes a table append-only for the application: UPDATE, DELETE and TRUNCATE
 * raise (after Boulder's SELECT, INSERT-only grants on its append-only
 * tables). devid_append_only() is created by the first migration.
 */
export async function makeAppendOnly(knex: Knex, table: string): Promise<void> {
  await knex.raw(`create trigger ${table}_append_only before update or delete on ${table}
    for each row execute function devid_append_only()`);
  await knex.raw(`create trigger ${table}_no_truncate before truncate on ${table}
    for each statement execute function devid_append_only()`);
}
