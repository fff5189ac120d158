import type { Knex } from 'knex';

/**
 * The operator console (docs/operators/console.md): browser sessions, each
 * bound to the token it was opened with, kept as the SHA-256 of the cookie so
 * a database read does not hand out live sessions. The index on audit actions
 * finds the recent clone signals and lineage forks without a scan of the chain.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('console_sessions', (t) => {
    t.binary('id_sha256').primary();
    t.text('token_id').notNullable().references('id').inTable('tokens');
    t.text('csrf').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
  });
  await knex.raw('create index audit_events_action_seq on audit_events (action, seq)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index audit_events_action_seq');
  await knex.schema.dropTable('console_sessions');
}
