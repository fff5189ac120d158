import type { Knex } from 'knex';
import { makeAppendOnly } from './append-only.ts';

/**
 * Gateways (RFC 7030 3.7, docs/operators/gateways.md): a device class may
 * name the models its devices mediate for (`gateway_models`); an operator
 * declares a constrained device with the gateways allowed to mediate it
 * (`device_gateways`); every operational certificate a gateway took part in
 * records its path (`certificate_paths`, append-only): the gateway, the
 * gateway's certificate, and whether the certificate is `mediated` (no
 * attestation) or `attested` (relayed attestation).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('device_classes', (t) => {
    t.jsonb('gateway_models');
  });
  await knex.schema.createTable('device_gateways', (t) => {
    t.text('device_serial').notNullable();
    t.text('gateway_serial').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.primary(['device_serial', 'gateway_serial']);
    t.index(['gateway_serial']);
  });
  await knex.schema.createTable('certificate_paths', (t) => {
    t.text('certificate_serial').primary();
    t.text('device_serial').notNullable();
    t.text('gateway_serial').notNullable();
    t.text('gateway_certificate_sha256').notNullable();
    t.text('assurance').notNullable(); // mediated | attested
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.index(['device_serial']);
    t.index(['gateway_serial']);
    t.index(['gateway_certificate_sha256']);
  });
  await knex.raw("alter table certificate_paths add constraint certificate_paths_assurance check (assurance in ('mediated', 'attested'))");
  await makeAppendOnly(knex, 'certificate_paths');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('certificate_paths');
  await knex.schema.dropTable('device_gateways');
  await knex.schema.alterTable('device_classes', (t) => {
    t.dropColumn('gateway_models');
  });
}
