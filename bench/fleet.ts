import type { Knex } from 'knex';

/**
 * A fleet straight into PostgreSQL for the benchmarks that need volume:
 * `count` active devices of model bench-1 in one batch, each with a birth
 * certificate by the factory CA and an operational one by the operational
 * CA (its predecessor the birth certificate). The certificates' DER is
 * filler of a real certificate's size: the benchmarks read and move rows,
 * they do not parse them.
 */
export async function seedFleet(db: Knex, batch: string, prefix: string, count: number): Promise<void> {
  const issuers = Object.fromEntries((await db('ca_certificates').select('id', 'role').where({ active: true })).map((r: { id: number; role: string }) => [r.role, r.id]));
  await db.raw(
    `insert into devices (serial, model, batch, line, state, factory_key_sha256, reprovision_allowed, sign_count, factory_attested_at, created_at, updated_at)
     select ? || g, 'bench-1', ?, 'bench', 'active', md5(? || 'fk' || g) || md5(? || 'fk2' || g), false, 0, now(), now(), now() from generate_series(1, ?) g`,
    [prefix, batch, prefix, prefix, count],
  );
  for (const kind of ['birth', 'operational'] as const) {
    await db.raw(
      `insert into certificates (serial, kind, issuer_id, device_serial, subject, der, sha256, key_sha256, predecessor_sha256, not_before, not_after, created_at)
       select '7' || substr(md5(random()::text || g::text), 2, 31), ?, ?, ? || g, 'CN=bench', decode(repeat('30', 640), 'hex'),
              md5(? || ? || g) || md5(? || ? || g || 'x'), md5('k' || ? || ? || g) || md5('l' || ? || ? || g),
              ${kind === 'operational' ? "md5('birth' || ? || g) || md5('birth' || ? || g || 'x')" : 'null'},
              now() - interval '1 hour', now() + interval '23 hours', now()
       from generate_series(1, ?) g`,
      [kind, kind === 'birth' ? issuers.factory : issuers.operational, prefix, kind, prefix, kind, prefix, kind, prefix, kind, prefix,
        ...(kind === 'operational' ? [prefix, prefix] : []), count],
    );
  }
  await db.raw('vacuum analyze devices, certificates');
}
