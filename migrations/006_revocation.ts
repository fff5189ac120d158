import type { Knex } from 'knex';

/**
 * Revocation and its publication (docs/operators/revocation.md): pre-signed OCSP responses
 * per certificate (a row without bytes waits for the signer and is answered
 * tryLater, never with an old `good`), CRL marks (a revocation leaves one per
 * issuer; the CRL generator takes them, so a revocation committed while a CRL
 * is built still makes the next one), CRLs in parts (a million entries is
 * 40 MB), compromised batches with the progress of their revocation, and an
 * index that reads an issuer's revoked certificates in serial order.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('ocsp_responses', (t) => {
    t.text('serial').primary().references('serial').inTable('certificates');
    t.integer('issuer_id').notNullable().references('id').inTable('ca_certificates');
    t.timestamp('not_after', { useTz: true }).notNullable(); // the certificate's: expired rows leave
    t.binary('sha1'); // OCSPResponse DER for the SHA-1 CertID; null while stale
    t.binary('sha256'); // the same for the SHA-256 CertID
    t.timestamp('this_update', { useTz: true });
    t.timestamp('next_update', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable();
    t.index(['updated_at']);
    t.index(['this_update']);
    t.index(['not_after']);
  });
  await knex.raw('create index ocsp_responses_stale on ocsp_responses (serial) where sha1 is null');
  // Certificates issued before this step get their responses from the signer's first rounds.
  await knex.raw('insert into ocsp_responses (serial, issuer_id, not_after, updated_at) select serial, issuer_id, not_after, now() from certificates where not_after > now()');

  await knex.schema.createTable('revocation_marks', (t) => {
    t.bigIncrements('id').primary();
    t.integer('issuer_id').notNullable().references('id').inTable('ca_certificates');
    t.index(['issuer_id']);
  });

  await knex.schema.createTable('crls', (t) => {
    t.integer('issuer_id').notNullable().references('id').inTable('ca_certificates');
    t.bigInteger('number').notNullable(); // milliseconds since the epoch of thisUpdate, or one more than the last
    t.timestamp('this_update', { useTz: true }).notNullable();
    t.timestamp('next_update', { useTz: true }).notNullable();
    t.integer('entries').notNullable();
    t.bigInteger('size').notNullable();
    t.text('sha256').notNullable();
    t.primary(['issuer_id', 'number']);
  });
  await knex.schema.createTable('crl_parts', (t) => {
    t.integer('issuer_id').notNullable();
    t.bigInteger('number').notNullable();
    t.integer('part').notNullable();
    t.binary('bytes').notNullable();
    t.primary(['issuer_id', 'number', 'part']);
    t.foreign(['issuer_id', 'number']).references(['issuer_id', 'number']).inTable('crls').onDelete('CASCADE');
  });
  // Signed DER does not compress: storing it as it is saves the attempt (seconds for a million entries).
  await knex.raw('alter table crl_parts alter column bytes set storage external');

  await knex.schema.createTable('compromised_batches', (t) => {
    t.text('batch').primary();
    t.integer('reason').notNullable();
    t.text('actor').notNullable();
    t.timestamp('requested_at', { useTz: true }).notNullable();
    t.text('cursor'); // the last device serial done, in serial order
    t.integer('devices').notNullable().defaultTo(0);
    t.integer('certificates').notNullable().defaultTo(0);
    t.timestamp('finished_at', { useTz: true });
  });

  // The CRL reads an issuer's revoked certificates from this index alone (an index-only scan), in serial order.
  await knex.raw('create index certificates_revoked_serial on certificates (issuer_id, serial) include (revoked_at, revocation_reason, not_after) where revoked_at is not null');
  await knex.raw('create index devices_batch_serial on devices (batch, serial)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index devices_batch_serial');
  await knex.raw('drop index certificates_revoked_serial');
  await knex.schema.dropTable('compromised_batches');
  await knex.schema.dropTable('crl_parts');
  await knex.schema.dropTable('crls');
  await knex.schema.dropTable('revocation_marks');
  await knex.schema.dropTable('ocsp_responses');
}
