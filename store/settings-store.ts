import type { Knex } from 'knex';

/** Values recorded once at init that certificates carry for ever (SPEC section 1). */
export class SettingsStore {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async get(key: string): Promise<string | undefined> {
    const row = await this.db('settings').select('value').where({ key }).first();
    return row?.value;
  }

  async all(): Promise<Record<string, string>> {
    const rows: Array<{ key: string; value: string }> = await this.db('settings').select('key', 'value');
    return Object.fromEntries(rows.map((r) => [r.key, r.value]));
  }

  async set(key: string, value: string): Promise<void> {
    await this.db('settings').insert({ key, value }).onConflict('key').merge();
  }
}
