import type { Knex } from 'knex';
import { makeAppendOnly } from './append-only.ts';

/**
 * Factory lines: device models, and signed checkpoints of the audit chain
 * (append-only like the log itself).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('models', (t) => {
    t.text('name').primary();
    t.text('hw_type').notNullable();
    t.text('manufacturer').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });

  await knex.schema.createTable('audit_checkpoints', (t) => {
    t.increments('id').primary();
    t.bigInteger('seq').notNullable(); // the chain head this checkpoint signs
    t.text('canonical').notNullable(); // RFC 8785 JSON of { at, head, key, seq }
    t.binary('signature').notNullable(); // DER ECDSA signature by the audit key over canonical
    t.index(['seq']);
  });
  await makeAppendOnly(knex, 'audit_checkpoints');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_checkpoints');
  await knex.schema.dropTable('models');
}
