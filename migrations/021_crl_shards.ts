import type { Knex } from 'knex';

/**
 * Sharded CRLs (publish/crl-publisher.ts): a certificate's shard is fixed at
 * issuance (null: its issuer's whole CRL, as before), each shard's CRL is
 * stored and marked apart (-1 is the whole CRL), and the revoked
 * certificates of one shard are read from an index of their own.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table certificates add column crl_shard smallint');
  await knex.raw(`create index certificates_revoked_shard on certificates (issuer_id, crl_shard, serial) include (revoked_at, revocation_reason, not_after)
    where revoked_at is not null and crl_shard is not null`);
  await knex.raw('create index certificates_crl_shard on certificates (issuer_id, crl_shard) where crl_shard is not null');
  // The whole CRL now lists the certificates without a shard: its index-only scan keeps to them.
  await knex.raw('drop index certificates_revoked_serial');
  await knex.raw(`create index certificates_revoked_serial on certificates (issuer_id, serial) include (revoked_at, revocation_reason, not_after)
    where revoked_at is not null and crl_shard is null`);
  await knex.raw('alter table revocation_marks add column shard smallint not null default -1');
  await knex.raw('alter table crl_parts drop constraint crl_parts_issuer_id_number_foreign');
  await knex.raw('alter table crl_parts drop constraint crl_parts_pkey');
  await knex.raw('alter table crls drop constraint crls_pkey');
  await knex.raw('alter table crls add column shard smallint not null default -1');
  await knex.raw('alter table crl_parts add column shard smallint not null default -1');
  await knex.raw('alter table crls add primary key (issuer_id, shard, number)');
  await knex.raw('alter table crl_parts add primary key (issuer_id, shard, number, part)');
  await knex.raw('alter table crl_parts add constraint crl_parts_crl foreign key (issuer_id, shard, number) references crls (issuer_id, shard, number) on delete cascade');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('delete from crls where shard <> -1');
  await knex.raw('alter table crl_parts drop constraint crl_parts_crl');
  await knex.raw('alter table crl_parts drop constraint crl_parts_pkey');
  await knex.raw('alter table crls drop constraint crls_pkey');
  await knex.raw('alter table crl_parts drop column shard');
  await knex.raw('alter table crls drop column shard');
  await knex.raw('alter table crls add primary key (issuer_id, number)');
  await knex.raw('alter table crl_parts add primary key (issuer_id, number, part)');
  await knex.raw('alter table crl_parts add constraint crl_parts_issuer_id_number_foreign foreign key (issuer_id, number) references crls (issuer_id, number) on delete cascade');
  await knex.raw('alter table revocation_marks drop column shard');
  await knex.raw('drop index certificates_crl_shard');
  await knex.raw('drop index certificates_revoked_serial');
  await knex.raw('create index certificates_revoked_serial on certificates (issuer_id, serial) include (revoked_at, revocation_reason, not_after) where revoked_at is not null');
  await knex.raw('drop index certificates_revoked_shard');
  await knex.raw('alter table certificates drop column crl_shard');
}
