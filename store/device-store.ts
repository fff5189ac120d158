import type { Knex } from 'knex';
import { conflictsAsStoreErrors, toDate, toDateOrNull, toStringOrNull } from './convert.ts';
import { CLASS_COLUMNS, classFromRow } from './device-class-store.ts';
import { MODEL_COLUMNS, modelFromRow } from './model-store.ts';
import { StoreNotFoundError, type ApprovedRelease, type DeviceBinding, type DeviceClassRecord, type DeviceRecord, type DeviceState, type ModelRecord } from './types.ts';

const COLUMNS = ['serial', 'model', 'batch', 'line', 'device_class', 'owner', 'state', 'manufacturer', 'factory_key_sha256', 'reprovision_allowed', 'sign_count', 'factory_attested_at', 'created_at', 'updated_at'];

/**
 * The device registry (docs/auditors/audit-log.md). State changes are compare-and-set:
 * each names the states it moves from and returns the updated row, or
 * undefined when the device was not in one of them (or does not exist).
 */
/** One device of the rotation report, before its reasons are worked out (registry/reports/rotation-report.ts). */
export interface RotationRow {
  serial: string;
  model: string;
  owner: string | null;
  state: string;
  className: string;
  reattestSeconds: number;
  factoryAttestedAt: Date | null;
  certificate: string | null;
  notBefore: Date | null;
  notAfter: Date | null;
  revokedAt: Date | null;
  /** Of the newest operational certificate: mediated by a gateway, or attested; null without one. */
  assurance: 'attested' | 'mediated' | null;
  /** A declared device without a factory key: it has no birth key to re-attest with. */
  keyless: boolean;
}

/** What a birth certificate request is decided on (enroll/factory.ts), read in one statement. */
export interface BirthContext {
  model: ModelRecord | undefined;
  /** The devices the key is certified for already. */
  holders: string[];
  device: DeviceRecord | undefined;
  /** Whether the batch was revoked as compromised. */
  compromised: boolean;
}

export class DeviceStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /**
   * The model, the key's holders, the device and its batch's standing, in
   * one round trip instead of four (the birth path is hot). Read after the
   * device and batch locks are taken, in a statement of its own: a
   * statement's snapshot is taken when it starts.
   */
  async forBirth(serial: string, model: string, keySha256: string, batch: string): Promise<BirthContext> {
    const { rows } = await this.db.raw(
      `select ${MODEL_COLUMNS.map((c) => `m.${c} as m_${c}`).join(', ')}, ${COLUMNS.map((c) => `d.${c} as d_${c}`).join(', ')},
              array(select distinct c.device_serial from certificates c where c.key_sha256 = ? and c.device_serial is not null) as holders,
              exists (select 1 from compromised_batches b where b.batch = ?) as compromised
       from (select 1) as one left join models m on m.name = ? left join devices d on d.serial = ?`,
      [keySha256, batch, model, serial],
    );
    const row = (rows as Array<Record<string, unknown>>)[0]!;
    const prefixed = (prefix: string) => Object.fromEntries(Object.entries(row).filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    return {
      model: row.m_name === null ? undefined : modelFromRow(prefixed('m_')),
      holders: (row.holders as string[] | null) ?? [],
      device: row.d_serial === null ? undefined : fromRow(prefixed('d_')),
      compromised: row.compromised === true,
    };
  }

  async find(serial: string): Promise<DeviceRecord | undefined> {
    const row = await this.db('devices').select(COLUMNS).where({ serial }).first();
    return row ? fromRow(row) : undefined;
  }

  /**
   * The device and its class, in one round trip: its own class, else its
   * model's default class, else the built-in `default`; StoreNotFoundError
   * for an unknown device.
   */
  async getWithClass(serial: string): Promise<{ device: DeviceRecord; deviceClass: DeviceClassRecord }> {
    return this.withClass(serial, false);
  }

  /** getWithClass and the model's firmware allowlist (the attestation checks it): one round trip, not two. */
  async getForAttestation(serial: string): Promise<AttestationView> {
    return this.withClass(serial, true);
  }

  private async withClass(serial: string, firmware: boolean): Promise<AttestationView> {
    // A nullable column (gateway_models) is the chosen class's own, not the first non-null of the three.
    const classColumns = CLASS_COLUMNS.map((c) => (c === 'gateway_models'
      ? `case when own.name is not null then own.${c} when model_class.name is not null then model_class.${c} else dflt.${c} end as class_${c}`
      : `coalesce(own.${c}, model_class.${c}, dflt.${c}) as class_${c}`)).join(', ');
    // Check 5's inputs in the same statement: the model's approved releases (legacy ones too) and legacy cut-off, the device's floor.
    const firmwareColumns = firmware
      ? `, (select coalesce(json_agg(json_build_object('version', r.version, 'digest', r.digest, 'sequence', r.sequence, 'minSequence', r.min_sequence,
                   'withdrawn', r.withdrawn_at is not null, 'manifestSha256', r.manifest_sha256, 'legacy', r.legacy) order by r.sequence, r.approved_at), '[]'::json)
           from firmware_releases r where r.model = d.model and r.approved_at is not null) as firmware_releases,
         m.legacy_firmware_until as legacy_firmware_until,
         d.firmware_sequence as firmware_sequence,
         exists (select 1 from tpm_activations t join certificates c on c.serial = t.certificate_serial
                 where t.device_serial = d.serial and c.kind = 'birth' and c.revoked_at is null) as tpm_born`
      : '';
    const { rows } = await this.db.raw(
      `select ${COLUMNS.map((c) => `d.${c}`).join(', ')}, ${classColumns}${firmwareColumns}
       from devices d
       left join device_classes own on own.name = d.device_class
       left join models m on m.name = d.model
       left join device_classes model_class on model_class.name = m.default_class
       join device_classes dflt on dflt.name = 'default'
       where d.serial = ?`,
      [serial],
    );
    const row = (rows as Array<Record<string, unknown>>)[0];
    if (!row) throw new StoreNotFoundError('device', serial);
    return {
      device: fromRow(row),
      deviceClass: classFromRow(Object.fromEntries(CLASS_COLUMNS.map((c) => [c, row[`class_${c}`]]))),
      firmware: {
        releases: (jsonColumn(row.firmware_releases) as Array<Record<string, unknown>>).map((r) => ({
          version: String(r.version), digest: String(r.digest), sequence: Number(r.sequence), minSequence: r.minSequence === null ? null : Number(r.minSequence),
          withdrawn: r.withdrawn === true, manifestSha256: r.manifestSha256 === null ? null : String(r.manifestSha256), legacy: r.legacy === true,
        })),
        legacyUntil: row.legacy_firmware_until === null || row.legacy_firmware_until === undefined ? null : toDate(row.legacy_firmware_until),
        deviceSequence: row.firmware_sequence === null || row.firmware_sequence === undefined ? null : Number(row.firmware_sequence),
      },
      tpmBorn: row.tpm_born === true,
    };
  }

  /**
   * The release the device's newest certificate was issued on (null: a
   * report no release maps to), in one statement: its version, which the
   * console counts per release, and its sequence, which raises the floor of
   * the device's next check 5 (never lowers it).
   */
  async recordFirmwareRelease(serial: string, release: { version: string; sequence: number } | null): Promise<void> {
    if (!release) await this.db('devices').where({ serial }).update({ firmware_version: null });
    else await this.db.raw('update devices set firmware_version = ?, firmware_sequence = greatest(coalesce(firmware_sequence, 0), ?) where serial = ?', [release.version, release.sequence, serial]);
  }

  /** How many devices of the model run each release, by version: one indexed range of devices_model_firmware, not a fleet scan. */
  async firmwareCounts(model: string): Promise<Map<string, number>> {
    const rows = await this.db('devices').select('firmware_version').count({ n: '*' }).where({ model }).whereNotNull('firmware_version').groupBy('firmware_version');
    return new Map(rows.map((row: Record<string, unknown>) => [String(row.firmware_version), Number(row.n)]));
  }


  /** The device, or StoreNotFoundError. */
  async get(serial: string): Promise<DeviceRecord> {
    const device = await this.find(serial);
    if (!device) throw new StoreNotFoundError('device', serial);
    return device;
  }

  /** Inserts a device; a taken serial or factory key raises StoreConflictError. */
  async insert(record: DeviceRecord): Promise<void> {
    await conflictsAsStoreErrors(
      this.db('devices').insert({
        serial: record.serial,
        model: record.model,
        batch: record.batch,
        line: record.line,
        device_class: record.deviceClass,
        owner: record.owner,
        state: record.state,
        manufacturer: record.manufacturer,
        factory_key_sha256: record.factoryKeySha256,
        reprovision_allowed: record.reprovisionAllowed,
        created_at: record.createdAt,
        updated_at: record.updatedAt,
      }),
      'device serial or factory key already registered',
    );
  }

  /** Moves the device from one of `from` to `to`; `reprovisionAllowed` is set with the move. */
  async transition(serial: string, from: readonly DeviceState[], to: DeviceState, now: Date, reprovisionAllowed = false): Promise<DeviceRecord | undefined> {
    const [row] = await this.db('devices')
      .where({ serial })
      .whereIn('state', from)
      .update({ state: to, reprovision_allowed: reprovisionAllowed, updated_at: now })
      .returning(COLUMNS);
    return row ? fromRow(row) : undefined;
  }

  /**
   * Binds a reprovisioned device to its new birth certificate's key, batch
   * and line; only while a reprovision allows it (compare-and-set).
   */
  /** Moves every device of a list that is in one of `from` to `to` in one statement; returns each moved serial with its state before. */
  async transitionMany(serials: readonly string[], from: readonly DeviceState[], to: DeviceState, now: Date): Promise<Array<{ serial: string; from: DeviceState }>> {
    if (serials.length === 0) return [];
    const { rows } = await this.db.raw(
      `update devices d set state = ?, updated_at = ?
       from (select serial, state from devices where serial = any(?) and state = any(?) for update) old
       where d.serial = old.serial
       returning d.serial, old.state`,
      [to, now, [...serials], [...from]],
    );
    return (rows as Array<{ serial: string; state: DeviceState }>).map((row) => ({ serial: row.serial, from: row.state }));
  }

  async setClass(serial: string, className: string, now: Date): Promise<void> {
    await this.db('devices').where({ serial }).update({ device_class: className, updated_at: now });
  }

  /** Records a new owner: compare-and-set on the owner before, so two racing transfers do not both apply. */
  async setOwner(serial: string, from: string | null, to: string, now: Date): Promise<boolean> {
    const query = this.db('devices').where({ serial });
    if (from === null) query.whereNull('owner');
    else query.andWhere({ owner: from });
    return (await query.update({ owner: to, updated_at: now })) === 1;
  }

  /** Devices of the whole fleet, a batch or one serial, in serial order, a page at a time (the auditor's export). */
  async page(scope: { batch?: string; serial?: string }, afterSerial: string, limit: number): Promise<DeviceRecord[]> {
    const query = this.db('devices').select(COLUMNS).where('serial', '>', afterSerial);
    if (scope.batch !== undefined) query.andWhere({ batch: scope.batch });
    if (scope.serial !== undefined) query.andWhere({ serial: scope.serial });
    return (await query.orderBy('serial').limit(limit)).map(fromRow);
  }

  /**
   * For the rotation report: each device in service (manufactured, active)
   * whose rotation_due_at has passed (kept by triggers, migration 027), with
   * its class's re-attestation interval and its newest operational
   * certificate. Read through the due-date index and one index probe per due
   * device, so the cost follows the devices that are behind, not the fleet.
   */
  async rotationRows(filter: { class?: string; model?: string; owner?: string }, now: Date): Promise<RotationRow[]> {
    const conditions: string[] = [];
    const bindings: unknown[] = [];
    if (filter.model !== undefined) { conditions.push('d.model = ?'); bindings.push(filter.model); }
    if (filter.owner !== undefined) { conditions.push('d.owner = ?'); bindings.push(filter.owner); }
    if (filter.class !== undefined) { conditions.push('coalesce(own.name, mc.name, dflt.name) = ?'); bindings.push(filter.class); }
    const { rows } = await this.db.raw(
      `select d.serial, d.model, d.owner, d.state, d.factory_attested_at, d.factory_key_sha256 is null and d.manufacturer = 'self' as keyless,
              (select p.assurance from certificate_paths p where p.certificate_serial = l.serial) as assurance,
              coalesce(own.name, mc.name, dflt.name) as class_name,
              coalesce(own.factory_reattest_every_seconds, mc.factory_reattest_every_seconds, dflt.factory_reattest_every_seconds) as reattest,
              l.serial as certificate, l.not_before, l.not_after, l.revoked_at
       from devices d
       left join lateral (
         select c.serial, c.not_before, c.not_after, c.revoked_at from certificates c
         where c.device_serial = d.serial and c.kind = 'operational'
         order by c.created_at desc, c.serial desc limit 1
       ) l on true
       left join device_classes own on own.name = d.device_class
       left join models m on m.name = d.model
       left join device_classes mc on mc.name = m.default_class
       join device_classes dflt on dflt.name = 'default'
       where d.state in ('manufactured', 'active') and d.rotation_due_at <= ?
         ${conditions.map((c) => `and ${c}`).join(' ')}
       order by d.serial`,
      [now, ...bindings] as Knex.RawBinding[],
    );
    return (rows as Array<Record<string, unknown>>).map((row) => ({
      serial: String(row.serial), model: String(row.model), owner: toStringOrNull(row.owner), state: String(row.state),
      className: String(row.class_name), reattestSeconds: Number(row.reattest), factoryAttestedAt: toDateOrNull(row.factory_attested_at),
      certificate: toStringOrNull(row.certificate), notBefore: toDateOrNull(row.not_before), notAfter: toDateOrNull(row.not_after), revokedAt: toDateOrNull(row.revoked_at),
      assurance: row.certificate === null ? null : row.assurance === 'mediated' ? 'mediated' : 'attested', keyless: row.keyless === true,
    }));
  }

  /** Devices of an owner, in serial order, a page at a time. */
  async byOwner(owner: string, afterSerial: string, limit: number): Promise<DeviceRecord[]> {
    return (await this.db('devices').select(COLUMNS).where({ owner }).andWhere('serial', '>', afterSerial).orderBy('serial').limit(limit)).map(fromRow);
  }

  async rebind(serial: string, binding: DeviceBinding, now: Date): Promise<DeviceRecord | undefined> {
    const [row] = await conflictsAsStoreErrors(
      this.db('devices')
        .where({ serial, reprovision_allowed: true, state: 'manufactured' })
        .update({
          model: binding.model, batch: binding.batch, line: binding.line, factory_key_sha256: binding.factoryKeySha256,
          // Born again in our factory, whoever made it first.
          manufacturer: 'self', reprovision_allowed: false, updated_at: now,
        })
        .returning(COLUMNS),
      'factory key already registered to another device',
    );
    return row ? fromRow(row) : undefined;
  }

  /** A declared device without a factory key gets its first birth binding (its state, class and history stay); undefined when it has one by now. */
  async bindDeclared(serial: string, binding: DeviceBinding, now: Date): Promise<DeviceRecord | undefined> {
    const [row] = await conflictsAsStoreErrors(
      this.db('devices')
        .where({ serial, manufacturer: 'self', batch: 'declared' }).whereNull('factory_key_sha256')
        .update({ model: binding.model, batch: binding.batch, line: binding.line, factory_key_sha256: binding.factoryKeySha256, updated_at: now })
        .returning(COLUMNS),
      'factory key already registered to another device',
    );
    return row ? fromRow(row) : undefined;
  }

  /**
   * Compare-and-set of the attestation counter (docs/device-makers/protocol.md, check 4): a
   * count above the last accepted one is taken, anything else refused, so of
   * two concurrent attestations with one count only one passes. A count of 0
   * passes only while no non-zero count was ever accepted. A birth-key
   * attestation also records when it happened.
   */
  /**
   * Sets the device's counter (check 4) back to 0, as an operator's
   * re-baseline after its TPM was cleared; returns the value it had, or
   * undefined when there is no such device.
   */
  async resetSignCount(serial: string, now: Date): Promise<number | undefined> {
    const { rows } = await this.db.raw(
      `update devices d set sign_count = 0, updated_at = ? from (select serial, sign_count from devices where serial = ? for update) as before
       where d.serial = before.serial returning before.sign_count as previous`,
      [now, serial],
    ) as { rows: Array<{ previous: unknown }> };
    return rows.length === 1 ? Number(rows[0]!.previous) : undefined;
  }

  async acceptSignCount(serial: string, count: number, factoryAttestedAt: Date | null): Promise<boolean> {
    const rows = await this.db('devices')
      .where({ serial })
      .andWhere((q) => (count === 0 ? q.where('sign_count', 0) : q.where('sign_count', '<', count)))
      .update({ sign_count: count, ...(factoryAttestedAt ? { factory_attested_at: factoryAttestedAt } : {}) })
      .returning('serial');
    return rows.length === 1;
  }

  /** The device proved its birth key now without a counter (an EST enrollment by its birth certificate): check 6 counts from here. */
  async markFactoryAttested(serial: string, at: Date): Promise<void> {
    await this.db('devices').where({ serial }).update({ factory_attested_at: at });
  }

  /**
   * A device born elsewhere shows its birth key at its first attestation:
   * recorded once (compare-and-set on null); a key another device already
   * has raises StoreConflictError (one birth key, one device).
   */
  async bindFactoryKey(serial: string, keySha256: string): Promise<boolean> {
    const rows = await conflictsAsStoreErrors(
      this.db('devices').where({ serial }).whereNull('factory_key_sha256').update({ factory_key_sha256: keySha256 }).returning('serial'),
      'the birth key is registered to another device',
    );
    return rows.length === 1;
  }

  async serialWithFactoryKey(keySha256: string): Promise<string | undefined> {
    const row = await this.db('devices').select('serial').where({ factory_key_sha256: keySha256 }).first();
    return row ? String(row.serial) : undefined;
  }

  /** Device serials of a manufacturer after `afterSerial`, in serial order (a withdrawal works through them). */
  async serialsOfManufacturer(manufacturer: string, afterSerial: string, limit: number): Promise<string[]> {
    const rows = await this.db('devices').select('serial').where({ manufacturer }).andWhere('serial', '>', afterSerial).orderBy('serial').limit(limit);
    return rows.map((row: { serial: string }) => row.serial);
  }

  /** Whether any device (and so any birth certificate) names this model. */
  async anyOfModel(model: string): Promise<boolean> {
    return (await this.db('devices').select('serial').where({ model }).first()) !== undefined;
  }

  /** Every device, from the state counters (migration 027): no scan of the fleet. */
  async count(): Promise<number> {
    const row = await this.db('fleet_counts').sum({ n: 'n' }).where({ dimension: 'state' }).first();
    return Number(row?.n ?? 0);
  }

  /**
   * How many devices share each value of a column, most first: the console's
   * fleet overview, from the counters the triggers keep (summed over their
   * slots), so its cost follows the number of values, not of devices.
   */
  async countsBy(column: 'state' | 'model' | 'device_class' | 'owner', limit: number): Promise<Array<{ value: string | null; devices: number }>> {
    const dimension = column === 'device_class' ? 'class' : column;
    const rows = await this.db('fleet_counts').select('value').sum({ n: 'n' }).where({ dimension }).groupBy('value')
      .havingRaw('sum(n) > 0').orderBy([{ column: 'n', order: 'desc' }, { column: 'value', order: 'asc' }]).limit(limit);
    // '' stands for "none" in the counters (a null cannot be part of their key).
    return (rows as Array<Record<string, unknown>>).map((row) => ({ value: row.value === '' ? null : String(row.value), devices: Number(row.n) }));
  }

  /** Devices whose serial starts with `prefix` (already checked against the serial syntax, so no LIKE wildcard), filtered, in serial order. */
  async search(filter: { prefix: string; state?: string; model?: string; owner?: string }, limit: number): Promise<DeviceRecord[]> {
    const query = this.db('devices').select(COLUMNS).where('serial', 'like', `${filter.prefix}%`).orderBy('serial').limit(limit);
    if (filter.state !== undefined) query.where({ state: filter.state });
    if (filter.model !== undefined) query.where({ model: filter.model });
    if (filter.owner !== undefined) query.where({ owner: filter.owner });
    return (await query).map(fromRow);
  }
}

function fromRow(row: Record<string, unknown>): DeviceRecord {
  return {
    serial: String(row.serial),
    model: String(row.model),
    batch: String(row.batch),
    line: String(row.line),
    deviceClass: toStringOrNull(row.device_class),
    owner: toStringOrNull(row.owner),
    state: row.state as DeviceState,
    manufacturer: String(row.manufacturer),
    factoryKeySha256: toStringOrNull(row.factory_key_sha256),
    reprovisionAllowed: row.reprovision_allowed === true,
    signCount: Number(row.sign_count),
    factoryAttestedAt: toDateOrNull(row.factory_attested_at),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

/** A device as its attestation needs it: its class, its model's firmware policy, and whether its birth key is proven to live in a TPM. */
export interface AttestationView {
  device: DeviceRecord;
  deviceClass: DeviceClassRecord;
  firmware: FirmwareState;
  /** Its live birth certificate was issued on a redeemed TPM credential activation (enroll/tpm-activation.ts). */
  tpmBorn: boolean;
}

/** Check 5's view of a device and its model: the approved releases and the highest sequence the device attested. */
export interface FirmwareState {
  releases: ApprovedRelease[];
  deviceSequence: number | null;
  /** The model's legacy cut-off: its legacy releases are refused from then on. */
  legacyUntil: Date | null;
}

const jsonColumn = (value: unknown): unknown => (typeof value === 'string' ? JSON.parse(value) : (value ?? []));
