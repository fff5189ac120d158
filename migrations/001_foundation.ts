import type { Knex } from 'knex';
import { makeAppendOnly } from './append-only.ts';

/**
 * The foundation schema: CA certificates, issued certificates, devices,
 * tokens and the hash-chained audit log. The audit log is append-only in the
 * database too: a trigger refuses UPDATE, DELETE and TRUNCATE.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('settings', (t) => {
    t.text('key').primary();
    t.text('value').notNullable();
  });

  await knex.schema.createTable('ca_certificates', (t) => {
    t.increments('id').primary();
    t.text('name').notNullable(); // root | factory | operational
    t.text('serial').notNullable().unique();
    t.binary('der').notNullable();
    t.text('key_label').notNullable();
    t.binary('key_id').notNullable();
    t.timestamp('not_after', { useTz: true }).notNullable();
    t.boolean('active').notNullable().defaultTo(true);
    t.timestamp('created_at', { useTz: true }).notNullable();
  });
  await knex.raw('create unique index ca_certificates_active_name on ca_certificates (name) where active');

  await knex.schema.createTable('devices', (t) => {
    t.text('serial').primary();
    t.text('model').notNullable();
    t.text('batch').notNullable();
    t.text('line').notNullable();
    t.text('device_class');
    t.text('owner');
    t.text('state').notNullable();
    t.text('factory_key_sha256').notNullable().unique();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.index(['batch']);
  });

  await knex.schema.createTable('certificates', (t) => {
    t.text('serial').primary(); // hex, as @peculiar/x509 prints it
    t.text('kind').notNullable(); // birth | operational | server | support
    t.text('issuer').notNullable(); // CA name
    t.text('device_serial');
    t.text('subject').notNullable();
    t.binary('der').notNullable();
    t.text('sha256').notNullable().unique();
    t.text('key_sha256').notNullable();
    t.text('predecessor_sha256');
    t.timestamp('not_before', { useTz: true }).notNullable();
    t.timestamp('not_after', { useTz: true }).notNullable();
    t.timestamp('revoked_at', { useTz: true });
    t.integer('revocation_reason');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.index(['device_serial']);
    t.index(['key_sha256']);
  });

  await knex.schema.createTable('tokens', (t) => {
    t.text('id').primary();
    t.text('role').notNullable();
    t.text('principal').notNullable();
    t.text('line');
    t.text('models'); // JSON array, null = every model
    t.text('vendor');
    t.binary('secret_sha256').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('revoked_at', { useTz: true });
  });

  await knex.schema.createTable('audit_events', (t) => {
    t.bigInteger('seq').primary();
    t.text('action').notNullable();
    t.text('device_serial');
    t.text('canonical').notNullable(); // the RFC 8785 JSON that was hashed
    t.text('hash').notNullable(); // SHA-256 hex of canonical
    t.index(['device_serial']);
  });
  await knex.raw(`
    create function devid_append_only() returns trigger language plpgsql as $$
    begin
      raise exception 'table % is append-only', tg_table_name;
    end $$`);
  await makeAppendOnly(knex, 'audit_events');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_events');
  await knex.raw('drop function devid_append_only()');
  for (const table of ['tokens', 'certificates', 'devices', 'ca_certificates', 'settings']) {
    await knex.schema.dropTable(table);
  }
}
