import type { Knex } from 'knex';

/**
 * TPM credential activation before a birth certificate
 * (enroll/tpm-activation.ts): the challenge made for a device's attestation
 * key and its TPM's endorsement key, kept until it is redeemed by the birth
 * (then it records which certificate it vouched for) or expires.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('tpm_activations', (t) => {
    t.text('id').primary();
    t.text('device_serial').notNullable();
    t.text('model').notNullable();
    t.text('line').notNullable();
    t.text('manufacturer').notNullable(); // the registered TPM maker whose anchors the EK certificate chains to
    t.binary('ek_certificate').notNullable();
    t.text('ek_sha256').notNullable();
    t.binary('ak_name').notNullable();
    t.binary('ak_spki').notNullable();
    t.text('credential_sha256').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('redeemed_at', { useTz: true });
    t.text('certificate_serial');
    t.index(['device_serial']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('tpm_activations');
}
