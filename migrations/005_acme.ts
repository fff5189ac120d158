import type { Knex } from 'knex';
import { makeAppendOnly } from './append-only.ts';

/**
 * ACME enrollment (docs/device-makers/protocol.md): nonces shared by every server process,
 * accounts, orders with their one authorization and challenge, the device's
 * attestation state (signCount, last birth-key attestation), device classes
 * with a built-in `default`, and the firmware lineage.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('acme_nonces', (t) => {
    t.text('value').primary();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.index(['expires_at']);
  });

  await knex.schema.createTable('acme_accounts', (t) => {
    t.text('id').primary();
    t.text('thumbprint').notNullable().unique(); // RFC 7638 of the account key
    t.text('jwk').notNullable();
    t.text('status').notNullable(); // valid | deactivated | revoked
    t.text('contact').notNullable(); // JSON array
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });

  await knex.schema.createTable('acme_orders', (t) => {
    t.text('id').primary();
    t.text('account_id').notNullable().references('id').inTable('acme_accounts');
    t.text('device_serial').notNullable().references('serial').inTable('devices');
    t.text('status').notNullable(); // pending | ready | processing | valid | invalid
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('replaces'); // serial of the certificate this order renews (RFC 9773)
    t.text('replaces_cert_id'); // the ARI certID the client sent, echoed in the order
    t.boolean('replaces_claimed').notNullable().defaultTo(false);
    t.binary('attested_spki'); // the key the device attested for this order
    t.text('firmware'); // JSON { version, digest } reported in the attestation
    t.text('certificate_serial').references('serial').inTable('certificates');
    t.text('error'); // JSON problem document
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.index(['device_serial']);
    t.index(['account_id']);
  });
  // One live claim per replaced certificate: a second order cannot claim it while the first is pending, ready or processing.
  await knex.raw('create unique index acme_orders_one_claim on acme_orders (replaces) where replaces_claimed');

  await knex.schema.createTable('acme_authorizations', (t) => {
    t.text('id').primary();
    t.text('order_id').notNullable().unique().references('id').inTable('acme_orders');
    t.text('status').notNullable(); // pending | valid | invalid | deactivated | expired | revoked
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('token').notNullable();
    t.text('challenge_status').notNullable(); // pending | processing | valid | invalid
    t.timestamp('challenge_validated_at', { useTz: true });
    t.text('challenge_error');
    t.timestamp('created_at', { useTz: true }).notNullable();
  });

  await knex.schema.alterTable('devices', (t) => {
    t.bigInteger('sign_count').notNullable().defaultTo(0);
    t.timestamp('factory_attested_at', { useTz: true });
  });

  await knex.schema.createTable('device_classes', (t) => {
    t.text('name').primary();
    t.integer('ttl_seconds').notNullable();
    t.boolean('staged_renewal').notNullable();
    t.integer('factory_reattest_every_seconds').notNullable();
    t.boolean('server_auth').notNullable();
    t.boolean('counter_required').notNullable();
    t.text('on_clone_signal').notNullable(); // refuse | suspend
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
  });
  const now = new Date();
  await knex('device_classes').insert({
    name: 'default', ttl_seconds: 24 * 3600, staged_renewal: false, factory_reattest_every_seconds: 30 * 24 * 3600,
    server_auth: false, counter_required: false, on_clone_signal: 'refuse', created_at: now, updated_at: now,
  });

  await knex.schema.createTable('device_firmware', (t) => {
    t.increments('id').primary();
    t.text('device_serial').notNullable().references('serial').inTable('devices');
    t.text('version').notNullable();
    t.text('digest').notNullable(); // hex
    t.text('certificate_serial').references('serial').inTable('certificates');
    t.timestamp('attested_at', { useTz: true }).notNullable();
    t.index(['device_serial']);
  });
  await makeAppendOnly(knex, 'device_firmware');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('device_firmware');
  await knex.schema.dropTable('device_classes');
  await knex.schema.alterTable('devices', (t) => {
    t.dropColumn('sign_count');
    t.dropColumn('factory_attested_at');
  });
  await knex.schema.dropTable('acme_authorizations');
  await knex.schema.dropTable('acme_orders');
  await knex.schema.dropTable('acme_accounts');
  await knex.schema.dropTable('acme_nonces');
}
