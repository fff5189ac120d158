import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AuditLog } from '../registry/audit-log.ts';
import { MODEL_PATTERN, NAME_PATTERN } from '../registry/identifiers.ts';
import type { Store } from '../store/store.ts';
import { ROLES, type Role, type TokenRecord } from '../store/types.ts';

/** `devid_<id>_<secret>`: the id finds the row, the 256-bit secret is compared as a hash. */
const TOKEN_FORMAT = /^devid_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError';
}

export interface TokenRequest {
  role: string;
  name?: string;
  line?: string;
  models?: string[];
  vendor?: string;
}

export interface CreatedToken {
  id: string;
  token: string;
  role: Role;
  name: string;
}

function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function checkName(what: string, value: string): string {
  if (!NAME_PATTERN.test(value)) throw new TokenRequestError(`${what} "${value}" must be 1-128 characters of letters, digits, ".", "_", "@" or "-"`);
  return value;
}

/** Validates a token request against its role (SPEC section 3). */
function validate(request: TokenRequest): Omit<TokenRecord, 'id' | 'principal' | 'secretSha256' | 'createdAt' | 'revokedAt'> {
  if (!ROLES.includes(request.role as Role)) throw new TokenRequestError(`role must be one of ${ROLES.join(', ')}`);
  const role = request.role as Role;
  if (role === 'factory' && !request.line) throw new TokenRequestError('a factory token needs --line <line id>');
  if (role !== 'factory' && (request.line || request.models)) throw new TokenRequestError('--line and --models belong to factory tokens');
  if (role === 'vendor' && !request.vendor) throw new TokenRequestError('a vendor token needs --vendor <vendor id>');
  if (role !== 'vendor' && request.vendor) throw new TokenRequestError('--vendor belongs to vendor tokens');
  const models = request.models?.map((m) => {
    if (!MODEL_PATTERN.test(m)) throw new TokenRequestError(`model "${m}" is not a model name (1-64 letters, digits, ".", "_", "-")`);
    return m;
  }) ?? null;
  if (models && models.length === 0) throw new TokenRequestError('--models needs at least one model');
  return {
    role,
    line: request.line ? checkName('line', request.line) : null,
    models,
    vendor: request.vendor ? checkName('vendor', request.vendor) : null,
  };
}

/** Creates a token; the secret is returned once and only its hash is stored. */
export async function createToken(store: Store, audit: AuditLog, request: TokenRequest, actor: string, now: Date): Promise<CreatedToken> {
  const fields = validate(request);
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const principal = request.name ? checkName('name', request.name) : `${fields.role}-${id}`;
  await store.transaction(async (tx) => {
    await tx.tokens.insert({ ...fields, id, principal, secretSha256: hashSecret(secret), createdAt: now, revokedAt: null });
    await audit.append(tx, {
      action: 'token.created',
      actor,
      data: { tokenId: id, role: fields.role, principal, line: fields.line, models: fields.models, vendor: fields.vendor },
    });
  });
  return { id, token: `devid_${id}_${secret}`, role: fields.role, name: principal };
}

export async function revokeToken(store: Store, audit: AuditLog, id: string, actor: string, now: Date): Promise<boolean> {
  return store.transaction(async (tx) => {
    if (!(await tx.tokens.revoke(id, now))) return false;
    await audit.append(tx, { action: 'token.revoked', actor, data: { tokenId: id } });
    return true;
  });
}

/**
 * The token record for a presented bearer token, or undefined when it is
 * malformed, unknown, revoked or wrong. The secret's hash is compared in
 * constant time; a missing row still costs one comparison.
 */
export async function authenticateToken(store: Store, presented: string): Promise<TokenRecord | undefined> {
  const match = TOKEN_FORMAT.exec(presented);
  if (!match) return undefined;
  const record = await store.tokens.byId(match[1]!);
  const expected = record?.secretSha256 ?? Buffer.alloc(32);
  const equal = timingSafeEqual(hashSecret(match[2]!), expected);
  if (!record || !equal || record.revokedAt) return undefined;
  return record;
}
