import type { Knex } from 'knex';

/**
 * Group commit for the audit chain (registry/audit/audit-log.ts): an audited
 * action writes its events here, in its own transaction and without the
 * chain lock; whichever process next holds the lock moves every committed
 * pending event into the chain in one transaction, so one commit covers
 * many actions instead of one.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_pending', (t) => {
    t.bigIncrements('id').primary();
    t.text('canonical_prefix').notNullable();
    t.text('action').notNullable();
    t.text('device_serial');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_pending');
}
