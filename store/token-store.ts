import type { Knex } from 'knex';
import { toBuffer, toDate, toDateOrNull } from './convert.ts';
import type { Role, TokenRecord } from './types.ts';

/** The token columns, also read by the session store's join. */
export const TOKEN_COLUMNS = ['id', 'role', 'principal', 'line', 'models', 'vendor', 'secret_sha256', 'created_at', 'revoked_at'];

/** Bearer tokens, kept only as the SHA-256 of their secret part. */
export class TokenStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: TokenRecord): Promise<void> {
    await this.db('tokens').insert({
      id: record.id,
      role: record.role,
      principal: record.principal,
      line: record.line,
      models: record.models ? JSON.stringify(record.models) : null,
      vendor: record.vendor,
      secret_sha256: record.secretSha256,
      created_at: record.createdAt,
      revoked_at: record.revokedAt,
    });
  }

  async byId(id: string): Promise<TokenRecord | undefined> {
    const row = await this.db('tokens').select(TOKEN_COLUMNS).where({ id }).first();
    return row ? tokenFromRow(row) : undefined;
  }

  async list(): Promise<TokenRecord[]> {
    return (await this.db('tokens').select(TOKEN_COLUMNS).orderBy('created_at')).map(tokenFromRow);
  }

  /** Marks a token revoked; false when it does not exist or already was. */
  async revoke(id: string, at: Date): Promise<boolean> {
    const count = await this.db('tokens').where({ id }).whereNull('revoked_at').update({ revoked_at: at });
    return Number(count) > 0;
  }
}

export function tokenFromRow(row: Record<string, unknown>): TokenRecord {
  return {
    id: String(row.id),
    role: row.role as Role,
    principal: String(row.principal),
    line: (row.line as string | null) ?? null,
    models: row.models ? (JSON.parse(String(row.models)) as string[]) : null,
    vendor: (row.vendor as string | null) ?? null,
    secretSha256: toBuffer(row.secret_sha256),
    createdAt: toDate(row.created_at),
    revokedAt: toDateOrNull(row.revoked_at),
  };
}
