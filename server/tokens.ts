import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sha256 } from '../ca/digest.ts';
import { malformed } from '../errors/domain-error.ts';
import type { AuditLog } from '../registry/audit/audit-log.ts';
import { checkModelName, checkName } from '../registry/identifiers.ts';
import type { AuthStore, TokenAdminStore } from '../store/subsets.ts';
import { ROLES, type Role, type TokenRecord } from '../store/types.ts';

/** `devid_<id>_<secret>`: the id finds the row, the 256-bit secret is compared as a hash. */
const TOKEN_FORMAT = /^devid_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;

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

/** Validates a token request against its role (docs/operators/tokens-and-roles.md). */
function validate(request: TokenRequest): Omit<TokenRecord, 'id' | 'principal' | 'secretSha256' | 'createdAt' | 'revokedAt'> {
  if (!ROLES.includes(request.role as Role)) throw malformed(`role must be one of ${ROLES.join(', ')}`);
  const role = request.role as Role;
  if (role === 'factory' && !request.line) throw malformed('a factory token needs --line <line id>');
  if (role !== 'factory' && (request.line || request.models)) throw malformed('--line and --models belong to factory tokens');
  if (role === 'vendor' && !request.vendor) throw malformed('a vendor token needs --vendor <vendor id>');
  if (role !== 'vendor' && request.vendor) throw malformed('--vendor belongs to vendor tokens');
  const models = request.models?.map(checkModelName) ?? null;
  if (models && models.length === 0) throw malformed('--models needs at least one model');
  return {
    role,
    line: request.line ? checkName('line', request.line) : null,
    models,
    vendor: request.vendor ? checkName('vendor', request.vendor) : null,
  };
}

/** Creates a token; the secret is returned once and only its hash is stored. Scoped models must be declared. */
export async function createToken(store: TokenAdminStore, audit: AuditLog, request: TokenRequest, actor: string, now: Date): Promise<CreatedToken> {
  const fields = validate(request);
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  const principal = request.name ? checkName('name', request.name) : `${fields.role}-${id}`;
  await audit.record(store, async (tx) => {
    for (const model of fields.models ?? []) {
      if (!(await tx.models.byName(model))) throw malformed(`model ${model} is not declared: an operator declares it with PUT /operator/v1/models/${model}`);
    }
    await tx.tokens.insert({ ...fields, id, principal, secretSha256: sha256(secret), createdAt: now, revokedAt: null });
    return {
      value: undefined,
      events: [{ action: 'token.created', actor, data: { tokenId: id, role: fields.role, principal, line: fields.line, models: fields.models, vendor: fields.vendor } }],
    };
  });
  return { id, token: `devid_${id}_${secret}`, role: fields.role, name: principal };
}

export async function revokeToken(store: TokenAdminStore, audit: AuditLog, id: string, actor: string, now: Date): Promise<boolean> {
  return audit.record(store, async (tx) => {
    const revoked = await tx.tokens.revoke(id, now);
    return { value: revoked, events: revoked ? [{ action: 'token.revoked', actor, data: { tokenId: id } }] : [] };
  });
}

/**
 * The token record for a presented bearer token, or undefined when it is
 * malformed, unknown, revoked or wrong. The secret's hash is compared in
 * constant time; a missing row still costs one comparison.
 */
export async function authenticateToken(store: Pick<AuthStore, 'tokens'>, presented: string): Promise<TokenRecord | undefined> {
  const match = TOKEN_FORMAT.exec(presented);
  if (!match) return undefined;
  const record = await store.tokens.byId(match[1]!);
  const expected = record?.secretSha256 ?? Buffer.alloc(32);
  const equal = timingSafeEqual(sha256(match[2]!), expected);
  if (!record || !equal || record.revokedAt) return undefined;
  return record;
}
