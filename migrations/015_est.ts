import type { Knex } from 'knex';

/**
 * EST enrollment (RFC 7030, docs/device-makers/est.md) is enabled per device
 * class: a class says `est: true`. Every class so far spoke ACME only.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('device_classes', (t) => {
    t.boolean('est').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('device_classes', (t) => {
    t.dropColumn('est');
  });
}
