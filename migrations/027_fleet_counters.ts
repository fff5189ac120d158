import type { Knex } from 'knex';

/**
 * Reports whose cost does not grow with the fleet (registry/reports/).
 *
 * fleet_counts: devices per state, model, class and owner, and claims per
 * manufacturer, kept by triggers: inserts and deletes by statement triggers
 * over their transition tables (one grouped upsert per statement, so a bulk
 * load costs one), updates by a row trigger whose WHEN clause skips, without
 * running any function, the updates that change no counted column (nearly
 * all of them: an enrollment moves the device's counter, not its state).
 * Each connection adds to its own slot (backend pid mod 16), so concurrent
 * writers do not queue on one counter row; a reader sums the slots.
 *
 * devices.rotation_due_at: when the device enters the rotation report, the
 * earlier of renewal_due_at (its newest operational certificate's 5/6 point,
 * or its revocation; -infinity when never enrolled) and its factory
 * re-attestation deadline (its class's interval after factory_attested_at).
 * Kept by triggers on devices, certificates, device classes and models, and
 * indexed for the devices in service, so the report reads only the devices
 * that are due.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`create table fleet_counts (
    dimension text not null, value text not null, slot smallint not null, n bigint not null,
    primary key (dimension, value, slot))`);
  await knex.raw(`create function devid_count(dimension text, value text, delta bigint) returns void language sql as $$
    insert into fleet_counts (dimension, value, slot, n) values (dimension, coalesce(value, ''), (pg_backend_pid() % 16)::smallint, delta)
    on conflict (dimension, value, slot) do update set n = fleet_counts.n + excluded.n $$`);
  await countingTriggers(knex);
  await rotationDue(knex);
}

const COUNTED = [['state', 'state'], ['model', 'model'], ['class', 'device_class'], ['owner', 'owner']] as const;

async function countingTriggers(knex: Knex): Promise<void> {
  const grouped = (table: string, sign: '' | '-') => `perform devid_count(d, v, ${sign}count(*)) from (${COUNTED.map(([d, c]) => `select '${d}' as d, ${c} as v from ${table}`).join(' union all ')}) c group by d, v`;
  await knex.raw(`create function devid_count_devices_insert() returns trigger language plpgsql as $$ begin ${grouped('new_rows', '')}; return null; end $$`);
  await knex.raw(`create function devid_count_devices_delete() returns trigger language plpgsql as $$ begin ${grouped('old_rows', '-')}; return null; end $$`);
  await knex.raw(`create function devid_count_devices_update() returns trigger language plpgsql as $$
    begin
      ${COUNTED.map(([d, c]) => `if new.${c} is distinct from old.${c} then perform devid_count('${d}', old.${c}, -1); perform devid_count('${d}', new.${c}, 1); end if;`).join('\n      ')}
      return null;
    end $$`);
  await knex.raw(`create trigger devices_count_insert after insert on devices referencing new table as new_rows
    for each statement execute function devid_count_devices_insert()`);
  await knex.raw(`create trigger devices_count_delete after delete on devices referencing old table as old_rows
    for each statement execute function devid_count_devices_delete()`);
  const columns = (alias: string) => `(${COUNTED.map(([, c]) => `${alias}.${c}`).join(', ')})`;
  await knex.raw(`create trigger devices_count_update after update on devices
    for each row when (${columns('old')} is distinct from ${columns('new')}) execute function devid_count_devices_update()`);

  await knex.raw(`create function devid_count_claims_insert() returns trigger language plpgsql as $$
    begin perform devid_count('claims', manufacturer_id, count(*)) from new_rows group by manufacturer_id; return null; end $$`);
  await knex.raw(`create function devid_count_claims_delete() returns trigger language plpgsql as $$
    begin perform devid_count('claims', manufacturer_id, -count(*)) from old_rows group by manufacturer_id; return null; end $$`);
  await knex.raw(`create trigger device_claims_count_insert after insert on device_claims referencing new table as new_rows
    for each statement execute function devid_count_claims_insert()`);
  await knex.raw(`create trigger device_claims_count_delete after delete on device_claims referencing old table as old_rows
    for each statement execute function devid_count_claims_delete()`);
}

async function rotationDue(knex: Knex): Promise<void> {
  // A device's certificates in order: the history's reads and the newest operational certificate from one index.
  await knex.raw('drop index certificates_device_serial_index');
  await knex.raw('create index certificates_device_created on certificates (device_serial, created_at)');
  await knex.raw('alter table devices add column renewal_due_at timestamptz, add column rotation_due_at timestamptz');

  await knex.raw(`create function devid_renewal_due(c certificates) returns timestamptz language sql immutable as $$
    select case when c.revoked_at is not null then least(c.revoked_at, c.not_before + (c.not_after - c.not_before) * 5 / 6)
                else c.not_before + (c.not_after - c.not_before) * 5 / 6 end $$`);
  // A device declared without a factory key (a gateway mediates for it) has no birth key to re-attest with: no deadline.
  await knex.raw(`create function devid_rotation_due(d devices) returns timestamptz language sql stable as $$
    select least(coalesce(d.renewal_due_at, '-infinity'), case when d.factory_key_sha256 is null and d.manufacturer = 'self' then 'infinity'
      else coalesce(d.factory_attested_at + make_interval(secs => (
        select coalesce(own.factory_reattest_every_seconds, mc.factory_reattest_every_seconds, dflt.factory_reattest_every_seconds)
        from device_classes dflt
        left join device_classes own on own.name = d.device_class
        left join models m on m.name = d.model
        left join device_classes mc on mc.name = m.default_class
        where dflt.name = 'default')), '-infinity') end) $$`);

  // Computed before the row is written, from the row itself: no second update, no read of the device's certificates.
  await knex.raw(`create function devid_device_rotation_due() returns trigger language plpgsql as $$
    begin new.rotation_due_at := devid_rotation_due(new); return new; end $$`);
  await knex.raw(`create trigger devices_rotation_due_insert before insert on devices
    for each row execute function devid_device_rotation_due()`);
  await knex.raw(`create trigger devices_rotation_due_update before update on devices
    for each row when ((old.model, old.device_class, old.factory_attested_at, old.renewal_due_at, old.factory_key_sha256, old.manufacturer)
                       is distinct from (new.model, new.device_class, new.factory_attested_at, new.renewal_due_at, new.factory_key_sha256, new.manufacturer))
    execute function devid_device_rotation_due()`);

  // A new certificate is its device's newest: the due date comes from the inserted row.
  await knex.raw(`create function devid_certificates_renewal_insert() returns trigger language plpgsql as $$
    begin
      update devices d set renewal_due_at = devid_renewal_due(n)
      from (select distinct on (device_serial) * from new_rows where kind = 'operational' and device_serial is not null
            order by device_serial, created_at desc, serial desc) n
      where d.serial = n.device_serial;
      return null;
    end $$`);
  // A revocation (or, in tests, a rewritten validity): read the device's newest certificate again.
  await knex.raw(`create function devid_certificates_renewal_update() returns trigger language plpgsql as $$
    begin
      update devices d set renewal_due_at = (select devid_renewal_due(c) from certificates c where c.device_serial = d.serial and c.kind = 'operational'
                                             order by c.created_at desc, c.serial desc limit 1)
      where d.serial in (select n.device_serial from new_rows n join old_rows o on o.serial = n.serial
                         where n.kind = 'operational' and n.device_serial is not null
                           and (o.revoked_at, o.not_before, o.not_after) is distinct from (n.revoked_at, n.not_before, n.not_after));
      return null;
    end $$`);
  await knex.raw(`create trigger certificates_renewal_insert after insert on certificates referencing new table as new_rows
    for each statement execute function devid_certificates_renewal_insert()`);
  await knex.raw(`create trigger certificates_renewal_update after update on certificates referencing old table as old_rows new table as new_rows
    for each statement execute function devid_certificates_renewal_update()`);

  // A mediated certificate (its path is written right after it) leaves its device in the report until an attestation raises it.
  await knex.raw(`create function devid_paths_renewal_insert() returns trigger language plpgsql as $$
    begin
      update devices d set renewal_due_at = '-infinity' where d.serial in (select device_serial from new_rows where assurance = 'mediated');
      return null;
    end $$`);
  await knex.raw(`create trigger certificate_paths_renewal_insert after insert on certificate_paths referencing new table as new_rows
    for each statement execute function devid_paths_renewal_insert()`);

  // A class's interval or a model's default class: every device it governs (an operator's change, as rare as it is wide).
  await knex.raw(`create function devid_class_rotation_due() returns trigger language plpgsql as $$
    declare changed text[];
    begin
      select array_agg(n.name) into changed from new_rows n join old_rows o on o.name = n.name
      where n.factory_reattest_every_seconds is distinct from o.factory_reattest_every_seconds;
      if changed is null then return null; end if;
      -- A device without a class of its own follows its model's default class, else 'default': recompute them all.
      update devices d set rotation_due_at = devid_rotation_due(d) where d.device_class = any (changed) or d.device_class is null;
      return null;
    end $$`);
  await knex.raw(`create function devid_model_rotation_due() returns trigger language plpgsql as $$
    begin
      update devices d set rotation_due_at = devid_rotation_due(d)
      where d.device_class is null
        and d.model in (select n.name from new_rows n join old_rows o on o.name = n.name where n.default_class is distinct from o.default_class);
      return null;
    end $$`);
  await knex.raw(`create trigger device_classes_rotation_due after update on device_classes referencing old table as old_rows new table as new_rows
    for each statement execute function devid_class_rotation_due()`);
  await knex.raw(`create trigger models_rotation_due after update on models referencing old table as old_rows new table as new_rows
    for each statement execute function devid_model_rotation_due()`);

  // Everything the triggers keep, from the rows themselves: for the devices there are now, and after a bulk load made with the triggers off.
  await knex.raw(`create function devid_rebuild_fleet_derived() returns void language plpgsql as $$
    begin
      update devices d set renewal_due_at = l.due from (
          select distinct on (device_serial) device_serial, devid_renewal_due(c) as due from certificates c
          where kind = 'operational' and device_serial is not null order by device_serial, created_at desc, serial desc) l
        where l.device_serial = d.serial and d.renewal_due_at is distinct from l.due;
      update devices d set renewal_due_at = '-infinity' from certificate_paths p
        where p.device_serial = d.serial and p.assurance = 'mediated' and d.renewal_due_at <> '-infinity'
          and p.certificate_serial = (select c.serial from certificates c where c.device_serial = d.serial and c.kind = 'operational'
                                      order by c.created_at desc, c.serial desc limit 1);
      update devices d set rotation_due_at = devid_rotation_due(d) where d.rotation_due_at is distinct from devid_rotation_due(d);
      delete from fleet_counts;
      ${COUNTED.map(([d, c]) => `insert into fleet_counts (dimension, value, slot, n) select '${d}', coalesce(${c}, ''), 0, count(*) from devices group by ${c};`).join(' ')}
      insert into fleet_counts (dimension, value, slot, n) select 'claims', manufacturer_id, 0, count(*) from device_claims group by manufacturer_id;
    end $$`);
  await knex.raw('select devid_rebuild_fleet_derived()');
  await knex.raw(`create index devices_rotation_due on devices (rotation_due_at) where state in ('manufactured', 'active')`);
}

export async function down(knex: Knex): Promise<void> {
  for (const trigger of ['devices_count_insert on devices', 'devices_count_update on devices', 'devices_count_delete on devices',
    'device_claims_count_insert on device_claims', 'device_claims_count_delete on device_claims', 'devices_rotation_due_insert on devices',
    'devices_rotation_due_update on devices', 'certificates_renewal_insert on certificates', 'certificate_paths_renewal_insert on certificate_paths', 'certificates_renewal_update on certificates',
    'device_classes_rotation_due on device_classes', 'models_rotation_due on models']) {
    await knex.raw(`drop trigger ${trigger}`);
  }
  await knex.raw(`drop function devid_count_devices_insert(), devid_count_devices_update(), devid_count_devices_delete(),
    devid_count_claims_insert(), devid_count_claims_delete(), devid_device_rotation_due(), devid_certificates_renewal_insert(),
    devid_certificates_renewal_update(), devid_paths_renewal_insert(), devid_class_rotation_due(), devid_model_rotation_due(), devid_rotation_due(devices),
    devid_renewal_due(certificates), devid_rebuild_fleet_derived(), devid_count(text, text, bigint)`);
  await knex.raw('drop index devices_rotation_due');
  await knex.raw('alter table devices drop column rotation_due_at, drop column renewal_due_at');
  await knex.raw('drop index certificates_device_created');
  await knex.raw('create index certificates_device_serial_index on certificates (device_serial)');
  await knex.raw('drop table fleet_counts');
}
