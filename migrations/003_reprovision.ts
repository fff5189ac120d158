import type { Knex } from 'knex';

/** An operator's reprovision allows one new birth certificate for the serial (docs/operators/factory.md). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('devices', (t) => {
    t.boolean('reprovision_allowed').notNullable().defaultTo(false);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('devices', (t) => {
    t.dropColumn('reprovision_allowed');
  });
}
