import type { Knex } from 'knex';
import { makeAppendOnly } from './append-only.ts';

/**
 * Delegated OCSP responders (RFC 6960 4.2.2.2): per issuing CA, a key in
 * the token and a short-lived certificate from that CA with id-kp-OCSPSigning.
 * A rotation adds a row (the next number); rows are never changed, so the
 * table is a record of every responder key the CA has made (append-only).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('ocsp_responders', (t) => {
    t.increments('id').primary();
    t.integer('issuer_id').notNullable().references('id').inTable('ca_certificates');
    t.integer('number').notNullable(); // 1, 2, ... per issuer: the key label's suffix
    t.text('serial').notNullable().unique();
    t.binary('der').notNullable();
    t.binary('public_key').notNullable(); // SubjectPublicKeyInfo DER of the key in the token
    t.text('key_label').notNullable();
    t.binary('key_id').notNullable(); // CKA_ID: what finds the key
    t.timestamp('not_before', { useTz: true }).notNullable();
    t.timestamp('not_after', { useTz: true }).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.unique(['issuer_id', 'number']);
  });
  await makeAppendOnly(knex, 'ocsp_responders');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('ocsp_responders');
}
