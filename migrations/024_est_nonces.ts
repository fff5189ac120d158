import type { Knex } from 'knex';

/**
 * Freshness nonces of relayed attestations (draft-ietf-lamps-attestation-freshness,
 * docs/operators/gateways.md): a gateway asks for one for a device behind
 * it; it is kept by its SHA-256, bound to that gateway and device, for 5
 * minutes, and deleted when used. In the database so every worker on one
 * PostgreSQL redeems it once.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('est_nonces', (t) => {
    t.text('nonce_sha256').primary();
    t.text('gateway_serial').notNullable();
    t.text('device_serial').notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
    t.index(['gateway_serial']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('est_nonces');
}
