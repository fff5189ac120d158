import type { Knex } from 'knex';

/**
 * Vendor support access (docs/operators/lifecycle.md): a grant requested by one operator
 * and approved by another; the window starts at approval. Support
 * certificates point at their grant, so revoking the grant revokes them.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('support_grants', (t) => {
    t.text('id').primary();
    t.text('device_serial').notNullable().references('serial').inTable('devices');
    t.text('vendor').notNullable();
    t.text('reason').notNullable();
    t.integer('hours').notNullable();
    t.text('requested_by').notNullable(); // principal
    t.timestamp('requested_at', { useTz: true }).notNullable();
    t.text('approved_by');
    t.timestamp('approved_at', { useTz: true });
    t.timestamp('window_end', { useTz: true });
    t.text('revoked_by');
    t.timestamp('revoked_at', { useTz: true });
    t.index(['device_serial']);
  });
  await knex.schema.alterTable('certificates', (t) => {
    t.text('support_grant_id').references('id').inTable('support_grants');
  });
  await knex.raw('create index certificates_support_grant on certificates (support_grant_id) where support_grant_id is not null');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('certificates', (t) => {
    t.dropColumn('support_grant_id');
  });
  await knex.schema.dropTable('support_grants');
}
