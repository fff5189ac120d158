import type { Knex } from 'knex';
import { makeAppendOnly } from './append-only.ts';

/**
 * Lifecycle governance (docs/operators/lifecycle.md): a default device class per model,
 * per-model firmware allowlists (a withdrawn entry keeps its row, with the
 * time it left), and the chain of owners of each device (append-only).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('models', (t) => {
    t.text('default_class').references('name').inTable('device_classes');
  });

  await knex.schema.createTable('model_firmware', (t) => {
    t.increments('id').primary();
    t.text('model').notNullable().references('name').inTable('models');
    t.text('version').notNullable();
    t.text('digest').notNullable(); // lowercase hex
    t.timestamp('allowed_at', { useTz: true }).notNullable();
    t.timestamp('withdrawn_at', { useTz: true });
    t.index(['model']);
  });
  await knex.raw('create unique index model_firmware_allowed on model_firmware (model, version, digest) where withdrawn_at is null');

  await knex.schema.createTable('ownership_transfers', (t) => {
    t.increments('id').primary();
    t.text('device_serial').notNullable().references('serial').inTable('devices');
    t.text('from_owner');
    t.text('to_owner').notNullable();
    t.text('evidence').notNullable();
    t.text('principal').notNullable(); // the operator who recorded it
    t.text('actor').notNullable(); // token:<id>
    t.timestamp('at', { useTz: true }).notNullable();
    t.index(['device_serial']);
  });
  await makeAppendOnly(knex, 'ownership_transfers');
  await knex.raw('create index devices_owner on devices (owner)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index devices_owner');
  await knex.schema.dropTable('ownership_transfers');
  await knex.schema.dropTable('model_firmware');
  await knex.schema.alterTable('models', (t) => {
    t.dropColumn('default_class');
  });
}
