import type { Knex } from 'knex';
import { conflictsAsStoreErrors, toBuffer, toDate, toDateOrNull, toStringOrNull } from './convert.ts';
import type {
  AccountStatus, AcmeAccountRecord, AcmeAuthorizationRecord, AcmeOrderRecord, AuthorizationStatus, ChallengeStatus, OrderStatus,
} from './types.ts';

const ACCOUNT = 'id, thumbprint, jwk, status, contact, recorded, created_at, updated_at';
const ORDER = 'id, account_id, device_serial, status, expires_at, replaces, replaces_cert_id, replaces_claimed, attested_spki, attested_by, firmware, certificate_serial, error, created_at, updated_at, identifier_type, identifier_value';
const AUTHZ = 'id, order_id, status, expires_at, token, challenge_status, challenge_validated_at, challenge_error, created_at';

type Row = Record<string, unknown>;

/**
 * ACME state (RFC 8555): nonces, accounts, orders and their authorization.
 * Plain SQL, not the query builder: these statements run on every ACME
 * request. Status changes are compare-and-set on the current status.
 */
export class AcmeStore {
  /** `accounts`: the process's account cache where it is the database's only user (PGlite), else null. */
  constructor(
    private readonly db: Knex | Knex.Transaction,
    private readonly accounts: AccountCache | null = null,
  ) {}

  private async rows(sql: string, bindings: readonly unknown[]): Promise<Row[]> {
    return ((await this.db.raw(sql, bindings as Knex.RawBinding[])) as { rows: Row[] }).rows;
  }

  async issueNonce(value: string, expiresAt: Date): Promise<void> {
    await this.db.raw('insert into acme_nonces (value, expires_at) values (?, ?)', [value, expiresAt]);
  }

  /**
   * Redeems a nonce (single use, RFC 8555 6.5), records the next one for the
   * response and, for a kid-signed request, reads the account: one round
   * trip. `fresh` is false when the nonce is unknown, used or expired.
   */
  async redeemNonce(value: string, next: string, now: Date, nextExpiresAt: Date, accountId: string | null): Promise<{ fresh: boolean; account: AcmeAccountRecord | undefined }> {
    const [row] = await this.rows(
      `with redeemed as (delete from acme_nonces where value = ? and expires_at > ? returning 1),
            issued as (insert into acme_nonces (value, expires_at) values (?, ?))
       select (select count(*)::int from redeemed) as redeemed, ${ACCOUNT.split(', ').map((c) => `a.${c}`).join(', ')}
       from (select 1) as one left join acme_accounts a on a.id = ?`,
      [value, now, next, nextExpiresAt, accountId],
    );
    return { fresh: Number(row!.redeemed) === 1, account: row!.id === null || row!.id === undefined ? undefined : accountFromRow(row!) };
  }

  async purgeNonces(now: Date): Promise<number> {
    return (await this.rows('delete from acme_nonces where expires_at <= ? returning 1', [now])).length;
  }

  /**
   * A new account, unless `maxUnrecorded` accounts no attestation has made
   * matter yet exist already (then false: a bound on what anonymous clients
   * may store); a key another account holds is a StoreConflictError.
   */
  async insertAccount(record: AcmeAccountRecord, maxUnrecorded: number): Promise<boolean> {
    const rows = await conflictsAsStoreErrors(
      this.rows(`insert into acme_accounts (${ACCOUNT}) select ?, ?, ?, ?, ?, ?, ?, ? where (select count(*) from acme_accounts where not recorded) < ? returning id`, [
        record.id, record.thumbprint, JSON.stringify(record.jwk), record.status, JSON.stringify(record.contact), record.recorded, record.createdAt, record.updatedAt, maxUnrecorded,
      ]),
      'an account with this key already exists',
    );
    // Committed as it is written (no transaction): its first request need not read it back.
    if (rows.length === 1 && this.accounts !== null && this.db.isTransaction !== true) this.accounts.set({ ...record });
    return rows.length === 1;
  }

  /** An account by id; where there is a cache, committed reads are kept (every request of an account reads it). */
  async account(id: string): Promise<AcmeAccountRecord | undefined> {
    const cacheable = this.accounts !== null && this.db.isTransaction !== true;
    const cached = cacheable ? this.accounts!.get(id) : undefined;
    if (cached) return cached;
    const [row] = await this.rows(`select ${ACCOUNT} from acme_accounts where id = ?`, [id]);
    const account = row ? accountFromRow(row) : undefined;
    if (account && cacheable) this.accounts!.set(account);
    return account;
  }

  async accountByThumbprint(thumbprint: string): Promise<AcmeAccountRecord | undefined> {
    const [row] = await this.rows(`select ${ACCOUNT} from acme_accounts where thumbprint = ?`, [thumbprint]);
    return row ? accountFromRow(row) : undefined;
  }

  async updateAccount(id: string, fields: { status?: AccountStatus; contact?: string[] }, now: Date): Promise<AcmeAccountRecord | undefined> {
    this.accounts?.forget(id);
    const [row] = await this.rows(
      `update acme_accounts set status = coalesce(?, status), contact = coalesce(?, contact), updated_at = ? where id = ? and status = 'valid' returning ${ACCOUNT}`,
      [fields.status ?? null, fields.contact ? JSON.stringify(fields.contact) : null, now, id],
    );
    return row ? accountFromRow(row) : undefined;
  }

  /** Compare-and-set of the account key (RFC 8555 7.3.5); a key another account holds is a StoreConflictError. */
  async changeAccountKey(id: string, oldThumbprint: string, thumbprint: string, jwk: JsonWebKey, now: Date): Promise<boolean> {
    this.accounts?.forget(id);
    const rows = await conflictsAsStoreErrors(
      this.rows(`update acme_accounts set thumbprint = ?, jwk = ?, updated_at = ? where id = ? and thumbprint = ? and status = 'valid' returning id`, [
        thumbprint, JSON.stringify(jwk), now, id, oldThumbprint,
      ]),
      'another account holds the new key',
    );
    return rows.length === 1;
  }

  /**
   * An order and its one authorization, in one statement (atomic without a
   * transaction), unless the account holds `maxLive` live (pending or ready)
   * orders already: then nothing is written and false returned.
   */
  async insertOrder(order: AcmeOrderRecord, authz: AcmeAuthorizationRecord, maxLive: number): Promise<boolean> {
    const rows = await this.rows(
      `with inserted as (
         insert into acme_orders (${ORDER}) select ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?
         where (select count(*) from acme_orders where account_id = ? and status in ('pending', 'ready') and expires_at > ?) < ?
         returning id)
       insert into acme_authorizations (${AUTHZ}) select ?, inserted.id, ?, ?, ?, ?, ?, ?, ? from inserted returning id`,
      [
        order.id, order.accountId, order.deviceSerial, order.status, order.expiresAt, order.replaces, order.replacesCertId, order.replacesClaimed,
        order.attestedSpki, order.attestedBy, order.firmware ? JSON.stringify(order.firmware) : null, order.certificateSerial,
        order.error ? JSON.stringify(order.error) : null, order.createdAt, order.updatedAt, order.identifier?.type ?? null, order.identifier?.value ?? null,
        order.accountId, order.createdAt, maxLive,
        authz.id, authz.status, authz.expiresAt, authz.token, authz.challengeStatus, authz.challengeValidatedAt,
        authz.challengeError ? JSON.stringify(authz.challengeError) : null, authz.createdAt,
      ],
    );
    return rows.length === 1;
  }

  async order(id: string): Promise<AcmeOrderRecord | undefined> {
    const [row] = await this.rows(`select ${ORDER} from acme_orders where id = ?`, [id]);
    return row ? orderFromRow(row) : undefined;
  }

  async ordersOfAccount(accountId: string): Promise<AcmeOrderRecord[]> {
    return (await this.rows(`select ${ORDER} from acme_orders where account_id = ? order by created_at`, [accountId])).map(orderFromRow);
  }

  /** The order that issued a certificate (for revocation by the account that holds it). */
  async orderOfCertificate(serial: string): Promise<AcmeOrderRecord | undefined> {
    const [row] = await this.rows(`select ${ORDER} from acme_orders where certificate_serial = ?`, [serial]);
    return row ? orderFromRow(row) : undefined;
  }

  /**
   * Moves an order from one of `from` to `to` (compare-and-set), with the
   * fields that go with the move. An order that leaves the live states
   * releases its claim on the certificate it replaces.
   */
  async moveOrder(id: string, from: readonly OrderStatus[], to: OrderStatus, now: Date, fields: OrderMoveFields = {}): Promise<AcmeOrderRecord | undefined> {
    const move = orderMove(id, from, to, now, fields);
    const [row] = await conflictsAsStoreErrors(this.rows(`${move.sql} returning ${ORDER}`, move.bindings), CLAIM_CONFLICT);
    return row ? orderFromRow(row) : undefined;
  }

  /**
   * An accepted attestation in one round trip: the order moves (as
   * moveOrder), then, only if it did, its authorization (as
   * moveAuthorization) and, when `recordAccount` names one, the account is
   * marked recorded (as markRecorded: `recorded` is false when it already was).
   */
  async moveOrderAndAuthorization(
    order: { id: string; from: readonly OrderStatus[]; to: OrderStatus; fields?: OrderMoveFields },
    authz: { id: string; from: readonly AuthorizationStatus[]; to: AuthorizationStatus; challenge: ChallengeStatus },
    recordAccount: string | null, now: Date,
  ): Promise<{ order: AcmeOrderRecord; authz: AcmeAuthorizationRecord; recorded: boolean } | undefined> {
    if (recordAccount !== null) this.accounts?.forget(recordAccount);
    const o = orderMove(order.id, order.from, order.to, now, order.fields ?? {});
    const a = authorizationMove(authz.id, authz.from, authz.to, authz.challenge, now);
    const [row] = await conflictsAsStoreErrors(this.rows(
      `with o as (${o.sql} returning ${ORDER}),
            a as (${a.sql} and exists (select 1 from o) returning ${AUTHZ}),
            r as (update acme_accounts set recorded = true where id = ? and not recorded and exists (select 1 from o) returning id)
       select ${prefixed('o', ORDER)}, ${prefixed('a', AUTHZ)}, (select count(*)::int from r) as recorded
       from o join a on true`,
      [...o.bindings, ...a.bindings, recordAccount],
    ), CLAIM_CONFLICT);
    return row ? { order: orderFromRow(unprefixed(row, 'o')), authz: authzFromRow(unprefixed(row, 'a')), recorded: Number(row.recorded) === 1 } : undefined;
  }

  /**
   * Live orders that claimed this certificate; expired ones release their
   * claim in the same statement (the select reads the rows as they were
   * before it, so it leaves the expired ones out itself).
   */
  async liveClaims(replaces: string, now: Date): Promise<AcmeOrderRecord[]> {
    return (await this.rows(
      `with released as (
         update acme_orders set status = 'invalid', replaces_claimed = false, updated_at = ? where replaces = ? and replaces_claimed and expires_at <= ?
       )
       select ${ORDER} from acme_orders where replaces = ? and replaces_claimed and expires_at > ?`,
      [now, replaces, now, replaces, now],
    )).map(orderFromRow);
  }

  /**
   * Ends every live order of some devices (pending, ready, processing):
   * revoking, reprovisioning, suspending, quarantining or decommissioning a
   * device leaves no order that could still become a certificate. Their
   * claims are released. Returns the ids ended.
   */
  async invalidateLiveOrders(deviceSerials: readonly string[], now: Date, error: Record<string, unknown>): Promise<string[]> {
    if (deviceSerials.length === 0) return [];
    const rows = await this.rows(
      `update acme_orders set status = 'invalid', replaces_claimed = false, error = ?, updated_at = ?
       where device_serial = any(?) and status in ('pending', 'ready', 'processing') returning id`,
      [JSON.stringify(error), now, [...deviceSerials]],
    );
    if (rows.length > 0) {
      await this.db.raw(`update acme_authorizations set status = 'invalid', challenge_status = case when challenge_status = 'valid' then challenge_status else 'invalid' end
        where order_id = any(?) and status in ('pending', 'valid')`, [rows.map((r) => String(r.id))]);
    }
    return rows.map((r) => String(r.id));
  }

  /** Marks an account audited (its first accepted attestation); false when it already was. */
  async markRecorded(id: string): Promise<boolean> {
    this.accounts?.forget(id);
    return (await this.rows('update acme_accounts set recorded = true where id = ? and not recorded returning id', [id])).length === 1;
  }

  /**
   * Housekeeping of state nobody needs any more: orders that ended (invalid,
   * or expired while pending or ready) without a certificate before
   * `ordersBefore`, with their authorizations; then accounts never recorded,
   * created before `accountsBefore`, that hold no order any more.
   */
  async purgeExpired(now: Date, ordersBefore: Date, accountsBefore: Date, limit: number): Promise<{ orders: number; accounts: number }> {
    this.accounts?.clear();
    const orders = await this.rows(
      `with gone as (
         select id from acme_orders
         where certificate_serial is null and expires_at < ? and (status = 'invalid' or (status in ('pending', 'ready') and expires_at <= ?))
         limit ?),
       authz as (delete from acme_authorizations where order_id in (select id from gone))
       delete from acme_orders where id in (select id from gone) returning 1`,
      [ordersBefore, now, limit],
    );
    const accounts = await this.rows(
      `delete from acme_accounts where id in (
         select a.id from acme_accounts a
         where not a.recorded and a.created_at < ? and not exists (select 1 from acme_orders o where o.account_id = a.id)
         limit ?) returning 1`,
      [accountsBefore, limit],
    );
    return { orders: orders.length, accounts: accounts.length };
  }

  /** An authorization with its order, in one round trip (every authorization and challenge request reads both). */
  async authorizationWithOrder(id: string): Promise<{ authz: AcmeAuthorizationRecord; order: AcmeOrderRecord } | undefined> {
    const [row] = await this.rows(
      `select ${prefixed('a', AUTHZ)}, ${prefixed('o', ORDER)} from acme_authorizations a join acme_orders o on o.id = a.order_id where a.id = ?`,
      [id],
    );
    return row ? { authz: authzFromRow(unprefixed(row, 'a')), order: orderFromRow(unprefixed(row, 'o')) } : undefined;
  }

  async authorization(id: string): Promise<AcmeAuthorizationRecord | undefined> {
    const [row] = await this.rows(`select ${AUTHZ} from acme_authorizations where id = ?`, [id]);
    return row ? authzFromRow(row) : undefined;
  }

  /** Moves an authorization and its challenge together (compare-and-set on the authorization's status). */
  async moveAuthorization(
    id: string, from: readonly AuthorizationStatus[], to: AuthorizationStatus, challenge: ChallengeStatus, now: Date, error?: Record<string, unknown>,
  ): Promise<AcmeAuthorizationRecord | undefined> {
    const move = authorizationMove(id, from, to, challenge, now, error);
    const [row] = await this.rows(`${move.sql} returning ${AUTHZ}`, move.bindings);
    return row ? authzFromRow(row) : undefined;
  }
}

/**
 * Accounts as committed, for a database only this process writes (PGlite:
 * one connection, so a read outside a transaction waits for any open one
 * to end). Every write of an account forgets it first, so a rolled-back
 * write leaves nothing stale; at most `max` are kept, the oldest leave.
 */
export class AccountCache {
  private readonly byId = new Map<string, AcmeAccountRecord>();

  constructor(private readonly max = 10_000) {}

  get(id: string): AcmeAccountRecord | undefined {
    return this.byId.get(id);
  }

  set(account: AcmeAccountRecord): void {
    if (this.byId.size >= this.max) this.byId.delete(this.byId.keys().next().value!);
    this.byId.set(account.id, Object.freeze(account));
  }

  forget(id: string): void {
    this.byId.delete(id);
  }

  clear(): void {
    this.byId.clear();
  }
}

export type OrderMoveFields = {
  attestedSpki?: Buffer; attestedBy?: string; firmware?: AcmeOrderRecord['firmware']; replacesClaimed?: boolean; certificateSerial?: string; error?: Record<string, unknown>;
};

const CLAIM_CONFLICT = 'another live order has claimed the certificate this order replaces';

/** The compare-and-set update of an order's status, with the fields of the move; a move out of the live states releases the claim. */
function orderMove(id: string, from: readonly OrderStatus[], to: OrderStatus, now: Date, fields: OrderMoveFields) {
  const releases = to === 'invalid' || to === 'valid';
  return {
    sql: `update acme_orders set status = ?, updated_at = ?,
            attested_spki = coalesce(?, attested_spki), attested_by = coalesce(?, attested_by), firmware = coalesce(?, firmware),
            replaces_claimed = case when ? then false else coalesce(?, replaces_claimed) end,
            certificate_serial = coalesce(?, certificate_serial), error = coalesce(?, error)
          where id = ? and status in (${from.map(() => '?').join(', ')})`,
    bindings: [
      to, now, fields.attestedSpki ?? null, fields.attestedBy ?? null, fields.firmware ? JSON.stringify(fields.firmware) : null,
      releases, fields.replacesClaimed ?? null, fields.certificateSerial ?? null, fields.error ? JSON.stringify(fields.error) : null,
      id, ...from,
    ] as unknown[],
  };
}

/** The compare-and-set update of an authorization's status and its challenge's. */
function authorizationMove(id: string, from: readonly AuthorizationStatus[], to: AuthorizationStatus, challenge: ChallengeStatus, now: Date, error?: Record<string, unknown>) {
  return {
    sql: `update acme_authorizations set status = ?, challenge_status = ?, challenge_validated_at = case when ? = 'valid' then ?::timestamptz else challenge_validated_at end,
            challenge_error = coalesce(?, challenge_error)
          where id = ? and status in (${from.map(() => '?').join(', ')})`,
    bindings: [to, challenge, challenge, now, error ? JSON.stringify(error) : null, id, ...from] as unknown[],
  };
}

/** The columns of one table in a join, each as `<alias>_<column>`. */
const prefixed = (alias: string, columns: string) => columns.split(', ').map((c) => `${alias}.${c} as ${alias}_${c}`).join(', ');

/** The row of one alias of a join, with its columns' own names. */
function unprefixed(row: Row, alias: string): Row {
  const own: Row = {};
  for (const [name, value] of Object.entries(row)) if (name.startsWith(`${alias}_`)) own[name.slice(alias.length + 1)] = value;
  return own;
}

const json = <T>(value: unknown): T | null => (value === null || value === undefined ? null : (JSON.parse(String(value)) as T));

function accountFromRow(row: Row): AcmeAccountRecord {
  return {
    id: String(row.id),
    thumbprint: String(row.thumbprint),
    jwk: json<JsonWebKey>(row.jwk)!,
    status: row.status as AccountStatus,
    contact: json<string[]>(row.contact) ?? [],
    recorded: row.recorded === true,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}

function orderFromRow(row: Row): AcmeOrderRecord {
  return {
    id: String(row.id),
    accountId: String(row.account_id),
    deviceSerial: String(row.device_serial),
    status: row.status as OrderStatus,
    expiresAt: toDate(row.expires_at),
    replaces: toStringOrNull(row.replaces),
    replacesCertId: toStringOrNull(row.replaces_cert_id),
    replacesClaimed: row.replaces_claimed === true,
    attestedSpki: row.attested_spki === null || row.attested_spki === undefined ? null : toBuffer(row.attested_spki),
    attestedBy: toStringOrNull(row.attested_by),
    firmware: json(row.firmware),
    certificateSerial: toStringOrNull(row.certificate_serial),
    error: json(row.error),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
    identifier: row.identifier_type && row.identifier_value ? { type: String(row.identifier_type), value: String(row.identifier_value) } : null,
  };
}

function authzFromRow(row: Row): AcmeAuthorizationRecord {
  return {
    id: String(row.id),
    orderId: String(row.order_id),
    status: row.status as AuthorizationStatus,
    expiresAt: toDate(row.expires_at),
    token: String(row.token),
    challengeStatus: row.challenge_status as ChallengeStatus,
    challengeValidatedAt: toDateOrNull(row.challenge_validated_at),
    challengeError: json(row.challenge_error),
    createdAt: toDate(row.created_at),
  };
}
