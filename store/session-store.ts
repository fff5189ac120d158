import type { Knex } from 'knex';
import { toDate } from './convert.ts';
import { TOKEN_COLUMNS, tokenFromRow } from './token-store.ts';
import type { TokenRecord } from './types.ts';

export interface ConsoleSessionRecord {
  idSha256: Buffer;
  tokenId: string;
  csrf: string;
  createdAt: Date;
  expiresAt: Date;
}

/** Console sessions (server/http/console-session.ts), by the SHA-256 of their cookie. */
export class SessionStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: ConsoleSessionRecord): Promise<void> {
    await this.db('console_sessions').insert({
      id_sha256: record.idSha256, token_id: record.tokenId, csrf: record.csrf, created_at: record.createdAt, expires_at: record.expiresAt,
    });
  }

  /** A live session and its token, in one query: not expired, and its token not revoked (revoking a token ends its sessions). */
  async live(idSha256: Buffer, now: Date): Promise<{ session: ConsoleSessionRecord; token: TokenRecord } | undefined> {
    const row = await this.db('console_sessions as s').join('tokens as t', 't.id', 's.token_id')
      .select([...TOKEN_COLUMNS.map((c) => `t.${c}`), 's.csrf', 's.created_at as session_created_at', 's.expires_at'])
      .where('s.id_sha256', idSha256).where('s.expires_at', '>', now).whereNull('t.revoked_at').first();
    if (!row) return undefined;
    const token = tokenFromRow(row);
    return {
      session: { idSha256, tokenId: token.id, csrf: String(row.csrf), createdAt: toDate(row.session_created_at), expiresAt: toDate(row.expires_at) },
      token,
    };
  }

  async delete(idSha256: Buffer): Promise<boolean> {
    return Number(await this.db('console_sessions').where({ id_sha256: idSha256 }).delete()) > 0;
  }

  async deleteExpired(now: Date): Promise<number> {
    return Number(await this.db('console_sessions').where('expires_at', '<=', now).delete());
  }
}
