import type { Knex } from 'knex';

/**
 * The verified update path (registry/firmware/update-path.ts): a release can
 * be withdrawn; a device remembers the highest release sequence it attested
 * (the floor against rollback); each step of a device's firmware lineage
 * names its release and manifest.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table firmware_releases add column withdrawn_at timestamptz, add column withdrawn_by text, add column withdraw_reason text');
  await knex.raw('alter table devices add column firmware_sequence bigint');
  await knex.raw('alter table device_firmware add column release_sequence bigint, add column manifest_sha256 text');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('alter table device_firmware drop column manifest_sha256, drop column release_sequence');
  await knex.raw('alter table devices drop column firmware_sequence');
  await knex.raw('alter table firmware_releases drop column withdraw_reason, drop column withdrawn_by, drop column withdrawn_at');
}
