import * as x509 from '@peculiar/x509';
import type { Knex } from 'knex';

/**
 * Issuer identity (docs/reference/certificates.md): a CA is its CA-certificate row, not a
 * name, so certificates of an old and a new operational intermediate are
 * told apart after a rollover. Each row records its role, generation, SKI
 * and public key; every certificate points at its issuer's row. Indexes for
 * lineage (a partial unique index makes a fork of operational certificates
 * impossible) and for revocation lists.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('drop index ca_certificates_active_name');
  await knex.schema.alterTable('ca_certificates', (t) => {
    t.renameColumn('name', 'role');
  });
  await knex.schema.alterTable('ca_certificates', (t) => {
    t.integer('generation').notNullable().defaultTo(1);
    t.binary('ski');
    t.binary('public_key');
    t.timestamp('not_before', { useTz: true });
  });
  const rows: Array<{ id: number; der: Uint8Array }> = await knex('ca_certificates').select('id', 'der');
  for (const row of rows) {
    const cert = new x509.X509Certificate(new Uint8Array(row.der));
    const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)!.keyId;
    await knex('ca_certificates').where({ id: row.id }).update({
      ski: Buffer.from(ski, 'hex'),
      public_key: Buffer.from(cert.publicKey.rawData),
      not_before: cert.notBefore,
    });
  }
  await knex.raw('alter table ca_certificates alter column ski set not null, alter column public_key set not null, alter column not_before set not null');
  await knex.raw('create unique index ca_certificates_active_role on ca_certificates (role) where active');
  await knex.raw('create unique index ca_certificates_role_generation on ca_certificates (role, generation)');

  await knex.schema.alterTable('certificates', (t) => {
    t.integer('issuer_id').references('id').inTable('ca_certificates');
  });
  await knex.raw(`update certificates c set issuer_id = (select id from ca_certificates a where a.role = c.issuer and a.active)`);
  await knex.raw('alter table certificates alter column issuer_id set not null');
  await knex.schema.alterTable('certificates', (t) => {
    t.dropColumn('issuer');
  });
  await knex.raw('create unique index certificates_issuer_serial on certificates (issuer_id, serial)');
  await knex.raw('create index certificates_predecessor on certificates (predecessor_sha256)');
  // One successor per operational certificate (or per birth certificate, for the first enrollment).
  await knex.raw(`create unique index certificates_one_successor on certificates (predecessor_sha256) where kind = 'operational'`);
  await knex.raw('create index certificates_revoked on certificates (issuer_id, revoked_at) where revoked_at is not null');
}

export async function down(knex: Knex): Promise<void> {
  for (const index of ['certificates_issuer_serial', 'certificates_predecessor', 'certificates_one_successor', 'certificates_revoked', 'ca_certificates_active_role', 'ca_certificates_role_generation']) {
    await knex.raw(`drop index ${index}`);
  }
  await knex.schema.alterTable('certificates', (t) => {
    t.text('issuer');
  });
  await knex.raw('update certificates c set issuer = (select role from ca_certificates a where a.id = c.issuer_id)');
  await knex.schema.alterTable('certificates', (t) => {
    t.dropColumn('issuer_id');
  });
  await knex.schema.alterTable('ca_certificates', (t) => {
    t.dropColumn('generation');
    t.dropColumn('ski');
    t.dropColumn('public_key');
    t.dropColumn('not_before');
  });
  await knex.schema.alterTable('ca_certificates', (t) => {
    t.renameColumn('role', 'name');
  });
  await knex.raw('create unique index ca_certificates_active_name on ca_certificates (name) where active');
}
