import { randomBytes } from 'node:crypto';
import { StoreConflictError, type AcmeAccountRecord } from '../../store/types.ts';
import { accountOf, type AcmeCall, type AcmeHandler } from './context.ts';
import { jsonPayload } from './jws.ts';
import { AcmeProblem, acmeProblem, rateLimited } from './problems.ts';
import { accountView } from './views.ts';

const MAX_CONTACTS = 4;
/**
 * Accounts that no device has attested through yet, at most, across the
 * CA: creating one needs no credential, so this bounds what anonymous
 * clients can store (housekeeping deletes them after a day unused).
 */
export const MAX_UNRECORDED_ACCOUNTS = 10_000;

/** RFC 8555 7.3: contact URLs are mailto: addresses here; none is needed. */
function checkContact(value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length > MAX_CONTACTS || !value.every((c) => typeof c === 'string' && /^mailto:[^\s,?@]{1,64}@[A-Za-z0-9.-]{1,253}$/.test(c))) {
    throw new AcmeProblem('malformed', 400, `contact must be at most ${MAX_CONTACTS} mailto: URLs`);
  }
  return value as string[];
}

function withLocation(call: AcmeCall, account: AcmeAccountRecord, status: number) {
  return { status, body: accountView(account, call.urls), location: call.urls.account(account.id) };
}

/**
 * POST /acme/new-account (RFC 8555 7.3), signed with the new account's JWK.
 * An existing account for the key is returned (200); `onlyReturnExisting`
 * never creates one. Accounts need no external binding: each order is
 * authorized by the device's attestation.
 */
export const newAccount: AcmeHandler = async (call) => {
  const { deps, jws, now } = call;
  const payload = jsonPayload(jws!) ?? {};
  const { thumbprint, jwk } = jws!.jwk!;
  const existing = await deps.store.acme.accountByThumbprint(thumbprint);
  if (existing) {
    if (existing.status !== 'valid') throw acmeProblem.unauthorized(`the account of this key is ${existing.status}`);
    return withLocation(call, existing, 200);
  }
  if (payload.onlyReturnExisting === true) throw new AcmeProblem('accountDoesNotExist', 400, 'no account exists for this key');
  const contact = checkContact(payload.contact) ?? [];
  // Anonymous until a device attests through it: no audit event yet (the first accepted attestation records the account).
  const account: AcmeAccountRecord = { id: randomBytes(16).toString('base64url'), thumbprint, jwk, status: 'valid', contact, recorded: false, createdAt: now, updatedAt: now };
  let inserted: boolean;
  try {
    inserted = await deps.store.acme.insertAccount(account, MAX_UNRECORDED_ACCOUNTS);
  } catch (err) {
    // Two requests for one key at once: the first one created it.
    const raced = err instanceof StoreConflictError ? await deps.store.acme.accountByThumbprint(thumbprint) : undefined;
    if (!raced) throw err;
    return withLocation(call, raced, 200);
  }
  if (!inserted) throw rateLimited('too many accounts have not attested a device yet; unused ones expire after a day', 3600);
  return withLocation(call, account, 201);
};

/**
 * POST /acme/acct/<id> (RFC 8555 7.3.2, 7.3.6): POST-as-GET reads the
 * account; {"contact": [...]} updates it; {"status": "deactivated"} ends it
 * for good (audited).
 */
export const accountUpdate: AcmeHandler = async (call) => {
  const { deps, now } = call;
  const account = accountOf(call);
  if (call.params.id !== account.id) throw acmeProblem.unauthorized('a request may only concern the account that signed it');
  const payload = jsonPayload(call.jws!);
  if (!payload || (payload.status === undefined && payload.contact === undefined)) return withLocation(call, account, 200);
  if (payload.status !== undefined && payload.status !== 'deactivated') throw acmeProblem.malformed('the only status a client may set is "deactivated"');
  const contact = checkContact(payload.contact);
  const deactivate = payload.status === 'deactivated';
  const updated = await deps.audit.record(deps.store, async (tx) => {
    const next = await tx.acme.updateAccount(account.id, { ...(deactivate ? { status: 'deactivated' as const } : {}), ...(contact ? { contact } : {}) }, now);
    if (!next) throw acmeProblem.unauthorized('the account is no longer valid');
    return {
      value: next,
      // An account no device attested through is not in the audit log: neither is its end.
      events: deactivate && account.recorded ? [{ action: 'acme.account-deactivated', actor: `acme:${account.id}`, data: { account: account.id } }] : [],
    };
  });
  return withLocation(call, updated, 200);
};

/** POST-as-GET /acme/acct/<id>/orders (RFC 8555 7.1.2.1). */
export const accountOrders: AcmeHandler = async (call) => {
  const account = accountOf(call);
  if (call.params.id !== account.id) throw acmeProblem.unauthorized('a request may only concern the account that signed it');
  const orders = await call.deps.store.acme.ordersOfAccount(account.id);
  return { status: 200, body: { orders: orders.filter((o) => o.status !== 'invalid').map((o) => call.urls.order(o.id)) } };
};
