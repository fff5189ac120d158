import type { Knex } from 'knex';
import { makeAppendOnly } from './append-only.ts';

/**
 * The audit log as a Merkle tree in the tlog-tiles layout
 * (registry/tlog/): its hash tiles, one row per tile, extended in place as
 * the tree grows (a partial tile of width W is the first W hashes of the
 * row), and its signed checkpoints, append-only like the log.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('tlog_tiles', (t) => {
    t.smallint('level').notNullable();
    t.bigInteger('tile_index').notNullable();
    t.binary('hashes').notNullable(); // 32 bytes per hash, 1 to 256 hashes
    t.primary(['level', 'tile_index']);
  });
  await knex.schema.createTable('tlog_checkpoints', (t) => {
    t.bigInteger('size').primary(); // the tree size it signs; one checkpoint per size
    t.binary('root').notNullable();
    t.text('note').notNullable(); // the C2SP signed note, as served
    t.timestamp('signed_at', { useTz: true }).notNullable();
  });
  await makeAppendOnly(knex, 'tlog_checkpoints');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('tlog_checkpoints');
  await knex.schema.dropTable('tlog_tiles');
}
