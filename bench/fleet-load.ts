import type { Knex } from 'knex';

export interface FleetLoadOptions {
  /** Rows per statement: bounded memory and a progress line per chunk. */
  chunk: number;
  /** The operational issuer's CRL shards: a certificate's shard is its number modulo this, as issuance fixes it. */
  shards: number;
  /** One device in this many has its operational certificate revoked and is suspended. */
  revokedEvery: number;
  progress(loaded: number, total: number): void;
}

/**
 * A synthetic fleet straight into PostgreSQL for the simulator: `count`
 * devices of model bench-1, each with a birth certificate and an
 * operational one (issued within the last 16 hours of a 24-hour validity, so
 * none is yet past its renewal point), loaded with the triggers off (the
 * session is a replica's) and the counters and due dates rebuilt once at the
 * end by the database's own function. The DER is filler of a real
 * certificate's size: the simulator reads and moves rows, it does not parse
 * them.
 */
export async function loadFleet(db: Knex, prefix: string, count: number, options: FleetLoadOptions): Promise<void> {
  const issuers = Object.fromEntries((await db('ca_certificates').select('id', 'role').where({ active: true })).map((r: { id: number; role: string }) => [r.role, r.id]));
  for (let from = 1; from <= count; from += options.chunk) {
    const to = Math.min(count, from + options.chunk - 1);
    await db.transaction(async (trx) => {
      await trx.raw('set local session_replication_role = replica');
      await trx.raw(
        `insert into devices (serial, model, batch, line, state, factory_key_sha256, reprovision_allowed, sign_count, factory_attested_at, created_at, updated_at)
         select ? || g, 'bench-1', 'sim-' || (g / 100000), 'sim', case when g % ? = 0 then 'suspended' else 'active' end,
                md5(? || 'fk' || g) || md5(? || 'fk2' || g), false, 0, now() - (g % 1000) * interval '1 minute', now(), now()
         from generate_series(?::bigint, ?::bigint) g`,
        [prefix, options.revokedEvery, prefix, prefix, from, to],
      );
      await trx.raw(
        `insert into certificates (serial, kind, issuer_id, device_serial, subject, der, sha256, key_sha256, predecessor_sha256, not_before, not_after, created_at)
         select '6' || substr(md5('b' || ? || g), 2, 31), 'birth', ?, ? || g, 'CN=sim', decode(repeat('30', 640), 'hex'),
                md5('birth' || ? || g) || md5('birth' || ? || g || 'x'), md5('bk' || ? || g) || md5('bl' || ? || g), null,
                now() - interval '1 day', now() + interval '20 years', now() - interval '1 day'
         from generate_series(?::bigint, ?::bigint) g`,
        [prefix, issuers.factory, prefix, prefix, prefix, prefix, prefix, from, to],
      );
      await trx.raw(
        `insert into certificates (serial, kind, issuer_id, device_serial, subject, der, sha256, key_sha256, predecessor_sha256, not_before, not_after,
                                   revoked_at, revocation_reason, crl_shard, created_at)
         select serial, 'operational', ?, ? || g, 'CN=sim', decode(repeat('30', 640), 'hex'),
                md5('op' || ? || g) || md5('op' || ? || g || 'x'), md5('ok' || ? || g) || md5('ol' || ? || g),
                md5('birth' || ? || g) || md5('birth' || ? || g || 'x'), nb, nb + interval '1 day',
                case when g % ? = 0 then now() - interval '1 hour' end, case when g % ? = 0 then 1 end,
                (('x' || substr(serial, 25, 8))::bit(32)::bigint % ?)::smallint, nb
         from (select g, '7' || substr(md5('o' || ? || g), 2, 31) as serial, now() - (g % 960) * interval '1 minute' as nb
               from generate_series(?::bigint, ?::bigint) g) s`,
        [issuers.operational, prefix, prefix, prefix, prefix, prefix, prefix, prefix, options.revokedEvery, options.revokedEvery, options.shards, prefix, from, to],
      );
    });
    options.progress(to, count);
  }
  await db.raw('select devid_rebuild_fleet_derived()');
  await db.raw('analyze devices, certificates, fleet_counts');
}
