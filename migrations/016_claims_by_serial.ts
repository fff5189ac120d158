import type { Knex } from 'knex';

/**
 * Claims by (manufacturer, serial): a device that attests with `apple` or
 * `android-key` gets a leaf certificate made fresh for each key from its
 * manufacturer's attestation service, so its claim names no birth
 * certificate. The column stays unique where set.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw('alter table device_claims alter column birth_certificate_sha256 drop not null');
}

export async function down(knex: Knex): Promise<void> {
  const [{ n }] = (await knex('device_claims').whereNull('birth_certificate_sha256').count({ n: '*' })) as Array<{ n: string | number }>;
  if (Number(n) > 0) throw new Error(`${n} device claims name no birth certificate (apple, android-key devices): remove them before this migration can be undone`);
  await knex.raw('alter table device_claims alter column birth_certificate_sha256 set not null');
}
