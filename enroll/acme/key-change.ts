import { flattenedVerify, type FlattenedJWS } from 'jose';
import { StoreConflictError } from '../../store/types.ts';
import { accountOf, type AcmeHandler } from './context.ts';
import { importAccountKey, JWS_ALGORITHMS } from './jws.ts';
import { AcmeProblem, acmeProblem } from './problems.ts';

/**
 * POST /acme/key-change (RFC 8555 7.3.5): the outer JWS by the account's key
 * (kid), the inner one by the new key (jwk), with the same url, no nonce, and
 * a payload naming the account and its old key. A key another account holds
 * is 409 with that account's Location.
 */
export const keyChange: AcmeHandler = async (call) => {
  const { deps, jws, now } = call;
  const account = accountOf(call);
  let inner: Record<string, unknown>;
  try {
    inner = JSON.parse(Buffer.from(jws!.payload).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw acmeProblem.malformed('the keyChange payload must be the inner JWS');
  }
  if (!isObject(inner) || typeof inner.protected !== 'string' || typeof inner.payload !== 'string' || typeof inner.signature !== 'string' || 'header' in inner) {
    throw acmeProblem.malformed('the inner JWS must be flattened, with a protected header only');
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(inner.protected, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw acmeProblem.malformed('the inner protected header is not JSON');
  }
  if (!isObject(header)) throw acmeProblem.malformed('the inner protected header must be a JSON object');
  if (typeof header.alg !== 'string' || !(JWS_ALGORITHMS as readonly string[]).includes(header.alg)) throw acmeProblem.badSignatureAlgorithm(JWS_ALGORITHMS);
  if ('kid' in header || 'nonce' in header || !('jwk' in header)) throw acmeProblem.malformed('the inner JWS needs a jwk, and no kid or nonce');
  if (header.url !== jws!.header.url) throw acmeProblem.malformed('the inner JWS url must equal the outer one');
  const next = await importAccountKey(header.jwk);
  let payload: Record<string, unknown>;
  try {
    const verified = await flattenedVerify(inner as unknown as FlattenedJWS, next.verifier, { algorithms: [header.alg] });
    payload = JSON.parse(Buffer.from(verified.payload).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw acmeProblem.malformed('the inner JWS does not verify with its jwk');
  }
  if (!isObject(payload)) throw acmeProblem.malformed('the inner payload must be a JSON object {"account", "oldKey"}');
  if (payload.account !== call.urls.account(account.id)) throw acmeProblem.malformed('the inner payload must name this account');
  const old = await importAccountKey(payload.oldKey).catch(() => undefined);
  if (old?.thumbprint !== account.thumbprint) throw acmeProblem.malformed('oldKey is not the account\'s current key');
  try {
    await deps.audit.record(deps.store, async (tx) => {
      if (!(await tx.acme.changeAccountKey(account.id, account.thumbprint, next.thumbprint, next.jwk, now))) throw acmeProblem.unauthorized('the account changed meanwhile');
      const events = account.recorded ? [{ action: 'acme.account-key-changed', actor: `acme:${account.id}`, data: { account: account.id, from: account.thumbprint, to: next.thumbprint } }] : [];
      return { value: undefined, events };
    });
  } catch (err) {
    if (!(err instanceof StoreConflictError)) throw err;
    const holder = await deps.store.acme.accountByThumbprint(next.thumbprint);
    throw new AcmeProblem('malformed', 409, 'another account already has the new key', {}, holder ? { Location: call.urls.account(holder.id) } : {});
  }
  return { status: 200, body: { status: account.status, contact: account.contact, orders: call.urls.orders(account.id) } };
};

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
