import type { Knex } from 'knex';

/**
 * Enrollment hardening after a security review:
 * - an order remembers the certificate its attestation rested on
 *   (`attested_by`, SHA-256 of x5c[0]), so finalize can check that this
 *   basis still stands (not revoked, not reprovisioned);
 * - an account is audited when it first matters (its first accepted
 *   attestation), not when an anonymous request creates it (`recorded`);
 *   accounts created before this step were audited at creation;
 * - one operational key, one certificate: a key certified once is never
 *   certified again, for this device or another (a unique index, so two
 *   orders of two devices racing with one key cannot both finalize);
 * - indexes for the housekeeping that purges expired ACME state.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('acme_orders', (t) => {
    t.text('attested_by');
    t.index(['status', 'expires_at']);
  });
  await knex.schema.alterTable('acme_accounts', (t) => {
    t.boolean('recorded').notNullable().defaultTo(false);
    t.index(['recorded', 'created_at']);
  });
  await knex('acme_accounts').update({ recorded: true });
  const [duplicate] = (await knex.raw(
    `select key_sha256 from certificates where kind = 'operational' group by key_sha256 having count(*) > 1 limit 1`,
  )).rows as Array<{ key_sha256: string }>;
  if (duplicate) {
    throw new Error(`two operational certificates certify one key (SHA-256 ${duplicate.key_sha256}): revoke all but one of them, then remove the others' rows before this migration can make keys unique`);
  }
  await knex.raw(`create unique index certificates_one_operational_key on certificates (key_sha256) where kind = 'operational'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index certificates_one_operational_key');
  await knex.schema.alterTable('acme_accounts', (t) => {
    t.dropIndex(['recorded', 'created_at']);
    t.dropColumn('recorded');
  });
  await knex.schema.alterTable('acme_orders', (t) => {
    t.dropIndex(['status', 'expires_at']);
    t.dropColumn('attested_by');
  });
}
