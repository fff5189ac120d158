import type { Knex } from 'knex';
import { makeAppendOnly } from './append-only.ts';

/**
 * Witnesses of the Merkle log (C2SP tlog-witness): the cosignatures they
 * returned, one per witness and checkpoint size, append-only like the
 * checkpoints they sign; and each witness's last answer, so /readyz and the
 * metrics of every server name one that stopped cosigning.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('tlog_cosignatures', (t) => {
    t.bigInteger('size').notNullable(); // the checkpoint's tree size
    t.text('witness').notNullable(); // the witness's key name
    t.text('signature').notNullable(); // the note signature line, as served
    t.timestamp('received_at', { useTz: true }).notNullable();
    t.primary(['size', 'witness']);
  });
  await makeAppendOnly(knex, 'tlog_cosignatures');
  await knex.schema.createTable('tlog_witness_status', (t) => {
    t.text('witness').primary();
    t.timestamp('attempted_at', { useTz: true }).notNullable();
    t.text('error'); // null after a cosignature; else why the last submission failed
    t.bigInteger('cosigned_size').notNullable().defaultTo(0); // the largest size it cosigned: read every step, so not a max() over every cosignature
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('tlog_witness_status');
  await knex.schema.dropTable('tlog_cosignatures');
}
