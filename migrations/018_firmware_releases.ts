import type { Knex } from 'knex';

/**
 * Signed firmware releases (docs/operators/firmware.md): each model's signer
 * (a key in the token, certified by the firmware intermediate; a revoked one
 * is retired when its replacement is made), and the
 * releases proposed by one operator and approved by another, with the SUIT
 * envelope signed at approval. Sequence numbers are unique per model.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('firmware_signers', (t) => {
    t.increments('id').primary();
    t.text('model').notNullable().references('name').inTable('models');
    t.text('certificate_serial').notNullable();
    t.integer('issuer_id').notNullable().references('id').inTable('ca_certificates');
    t.binary('certificate_der').notNullable();
    t.text('key_label').notNullable();
    t.binary('key_id').notNullable().unique();
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.timestamp('retired_at', { useTz: true }); // replaced after its certificate was revoked
  });
  await knex.raw('create unique index firmware_signers_one_active on firmware_signers (model) where retired_at is null');
  await knex.schema.createTable('firmware_releases', (t) => {
    t.text('model').notNullable().references('name').inTable('models');
    t.text('version').notNullable();
    t.text('digest').notNullable(); // SHA-256 of the image, hex
    t.bigInteger('size').notNullable();
    t.bigInteger('sequence').notNullable();
    t.bigInteger('min_sequence');
    t.text('proposal').notNullable(); // SHA-256 of the release's RFC 8785 JSON
    t.text('proposed_by').notNullable();
    t.timestamp('proposed_at', { useTz: true }).notNullable();
    t.text('approved_by');
    t.timestamp('approved_at', { useTz: true });
    t.text('signer_certificate_serial');
    t.binary('envelope'); // the signed SUIT envelope
    t.text('manifest_sha256'); // SHA-256 of the bstr-wrapped manifest, hex
    t.primary(['model', 'version']);
    t.unique(['model', 'sequence']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('firmware_releases');
  await knex.schema.dropTable('firmware_signers');
}
