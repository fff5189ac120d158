import type { Knex } from 'knex';
import { makeAppendOnly } from './append-only.ts';

/**
 * Devices born elsewhere (docs/operators/manufacturers.md): other manufacturers' CAs as
 * trust anchors (a configuration proposed by one operator and approved by
 * another), their CRLs, the operator's claims on devices (from manifests,
 * one by one, or from another CA's ownership statement), the outside birth
 * certificates devices attested with, and the signed ownership statements
 * (append-only). A device's manufacturer is `self` for our own births; an
 * outside device has no factory key until its first attestation.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('devices', (t) => {
    t.text('manufacturer').notNullable().defaultTo('self');
  });
  await knex.raw('alter table devices alter column factory_key_sha256 drop not null');
  await knex.raw('create index devices_manufacturer_serial on devices (manufacturer, serial)');
  // An order may name a serial no device has yet: its attestation tells a genuine unclaimed device from noise (docs/operators/manufacturers.md).
  await knex.raw('alter table acme_orders drop constraint acme_orders_device_serial_foreign');

  await knex.schema.createTable('manufacturers', (t) => {
    t.text('id').primary();
    t.text('status').notNullable(); // pending (never approved), active, withdrawn
    t.jsonb('active'); // {certificates: [base64 DER], models: [...], crl: {url} | {pem} | null}
    t.jsonb('proposed');
    t.jsonb('retired').notNullable().defaultTo('[]'); // certificates once active, since withdrawn or replaced: old births still verify offline
    t.text('proposed_by'); // principal
    t.timestamp('proposed_at', { useTz: true });
    t.text('approved_by');
    t.timestamp('approved_at', { useTz: true });
    t.text('withdrawn_by');
    t.timestamp('withdrawn_at', { useTz: true });
    t.text('withdraw_reason');
    // The manufacturer's current CRL, verified: who signed it, its number and times, and when it was last read.
    t.text('crl_issuer_sha256');
    t.text('crl_number');
    t.text('crl_sha256');
    t.timestamp('crl_this_update', { useTz: true });
    t.timestamp('crl_next_update', { useTz: true });
    t.timestamp('crl_checked_at', { useTz: true });
    t.text('crl_error');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });

  await knex.schema.createTable('manufacturer_crl_entries', (t) => {
    t.text('manufacturer_id').notNullable().references('id').inTable('manufacturers');
    t.text('serial_hex').notNullable();
    t.timestamp('revoked_at', { useTz: true }).notNullable();
    t.integer('reason');
    t.primary(['manufacturer_id', 'serial_hex']);
  });

  await knex.schema.createTable('device_claims', (t) => {
    t.text('device_serial').primary().references('serial').inTable('devices');
    t.text('manufacturer_id').notNullable().references('id').inTable('manufacturers');
    t.text('birth_certificate_sha256').notNullable().unique();
    t.text('source').notNullable(); // manifest, claim, statement
    t.text('manifest_sha256');
    t.text('claimed_by').notNullable(); // principal
    t.timestamp('claimed_at', { useTz: true }).notNullable();
    t.timestamp('superseded_at', { useTz: true }); // reprovisioned: the device has our birth certificate now
  });

  await knex.schema.createTable('outside_births', (t) => {
    t.text('sha256').primary();
    t.text('device_serial').notNullable().unique().references('serial').inTable('devices');
    t.text('manufacturer_id').notNullable().references('id').inTable('manufacturers');
    t.binary('der').notNullable();
    t.text('serial_hex').notNullable();
    t.text('issuer_sha256').notNullable();
    t.jsonb('path').notNullable(); // SHA-256 of each CA certificate on the path, issuer first
    t.jsonb('path_certificates').notNullable(); // their DER, base64, in the same order
    t.timestamp('not_before', { useTz: true }).notNullable();
    t.timestamp('not_after', { useTz: true }).notNullable();
    t.timestamp('first_attested_at', { useTz: true }).notNullable();
    t.timestamp('revoked_at', { useTz: true });
    t.integer('revocation_reason');
    t.index(['manufacturer_id', 'serial_hex']);
  });

  await knex.schema.createTable('ownership_statements', (t) => {
    t.increments('id').primary();
    t.text('device_serial').notNullable().references('serial').inTable('devices');
    t.text('statement').notNullable(); // the signed statement as exported, JSON
    t.text('sha256').notNullable(); // of the statement's canonical JSON: the next statement's `previous`
    t.text('direction').notNullable(); // exported, imported
    t.timestamp('at', { useTz: true }).notNullable();
    t.index(['device_serial']);
  });
  await makeAppendOnly(knex, 'ownership_statements');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('ownership_statements');
  await knex.schema.dropTable('outside_births');
  await knex.schema.dropTable('device_claims');
  await knex.schema.dropTable('manufacturer_crl_entries');
  await knex.schema.dropTable('manufacturers');
  await knex.raw('alter table acme_orders add constraint acme_orders_device_serial_foreign foreign key (device_serial) references devices (serial)');
  await knex.raw('drop index devices_manufacturer_serial');
  await knex.schema.alterTable('devices', (t) => {
    t.dropColumn('manufacturer');
  });
}
