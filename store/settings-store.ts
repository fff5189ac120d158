import type { Knex } from 'knex';

/** Values recorded once at init that certificates carry for ever (docs/reference/certificates.md). */
export class SettingsStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async all(): Promise<Record<string, string>> {
    const rows: Array<{ key: string; value: string }> = await this.db('settings').select('key', 'value');
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  async set(key: string, value: string): Promise<void> {
    await this.db('settings').insert({ key, value }).onConflict('key').merge();
  }
}
