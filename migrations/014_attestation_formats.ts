import type { Knex } from 'knex';

/**
 * Attestation formats as plug-ins (pki/attestation/format.ts): a device
 * class names the formats (`fmt`) its devices may attest with. Every class
 * so far accepted the one format there was, "devid".
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('device_classes', (t) => {
    t.jsonb('attestation_formats').notNullable().defaultTo(JSON.stringify(['devid']));
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('device_classes', (t) => {
    t.dropColumn('attestation_formats');
  });
}
