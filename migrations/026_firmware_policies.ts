import type { Knex } from 'knex';
import canonicalize from 'canonicalize';
import { createHash } from 'node:crypto';

/** A legacy release's name is its allowlist version where that can name a release (in URLs) and is free in its model. */
const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$/;

/**
 * Firmware policies (docs/operators/firmware.md):
 * - what a device class does with a device that attests on a withdrawn
 *   release (refuse, the default, or suspend);
 * - the allowlist entries become legacy releases: unsigned, sequence 0,
 *   marked `legacy` (sequence numbers stay unique among signed releases
 *   only), accepted by check 5 until the model's `legacy_firmware_until`;
 *   `model_firmware` stays as it was, read by nothing;
 * - each device keeps the release it last attested on (its version),
 *   indexed with its model, so the devices on each release are counted
 *   without a fleet scan.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw("alter table device_classes add column on_withdrawn_firmware text not null default 'refuse'");
  await knex.raw('alter table firmware_releases add column legacy boolean not null default false');
  await knex.raw('alter table firmware_releases drop constraint firmware_releases_model_sequence_unique');
  await knex.raw('create unique index firmware_releases_signed_sequence on firmware_releases (model, sequence) where not legacy');
  await knex.raw('alter table models add column legacy_firmware_until timestamptz');
  // The console's count of devices per release: devices by model and the release they last attested on (its version).
  await knex.raw('alter table devices add column firmware_version text');
  await knex.raw('create index devices_model_firmware on devices (model, firmware_version) where firmware_version is not null');
  await knex.raw(`update devices d set firmware_version = f.version from (
      select distinct on (device_serial) device_serial, version from device_firmware order by device_serial, id desc) f
    where f.device_serial = d.serial`);
  await migrateAllowlists(knex);
}

/** Every allowlist entry, live ones first (so they keep their version as name), becomes a legacy release. */
async function migrateAllowlists(knex: Knex): Promise<void> {
  const rows: Array<{ id: number; model: string; version: string; digest: string; allowed_at: Date; withdrawn_at: Date | null }> = await knex('model_firmware')
    .select('id', 'model', 'version', 'digest', 'allowed_at', 'withdrawn_at').orderByRaw('withdrawn_at is not null, id');
  const taken = new Set((await knex('firmware_releases').select('model', 'version')).map((r: { model: string; version: string }) => `${r.model}\u0000${r.version}`));
  for (const row of rows) {
    const named = VERSION_PATTERN.test(row.version) && !taken.has(`${row.model}\u0000${row.version}`) ? row.version : `legacy-${row.id}`;
    taken.add(`${row.model}\u0000${named}`);
    const proposal = createHash('sha256').update(canonicalize({ digest: row.digest, legacy: true, model: row.model, version: named })!).digest('hex');
    await knex('firmware_releases').insert({
      model: row.model, version: named, digest: row.digest, size: 0, sequence: 0, min_sequence: null, proposal, legacy: true,
      proposed_by: 'allowlist', proposed_at: row.allowed_at, approved_by: 'allowlist', approved_at: row.allowed_at,
      withdrawn_at: row.withdrawn_at, withdrawn_by: row.withdrawn_at ? 'allowlist' : null, withdraw_reason: row.withdrawn_at ? 'removed from the allowlist' : null,
    });
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex('firmware_releases').where({ legacy: true }).delete();
  await knex.raw('drop index devices_model_firmware');
  await knex.raw('alter table devices drop column firmware_version');
  await knex.raw('alter table models drop column legacy_firmware_until');
  await knex.raw('drop index firmware_releases_signed_sequence');
  await knex.raw('alter table firmware_releases add constraint firmware_releases_model_sequence_unique unique (model, sequence)');
  await knex.raw('alter table firmware_releases drop column legacy');
  await knex.raw('alter table device_classes drop column on_withdrawn_firmware');
}
