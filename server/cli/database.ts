import type { Command } from 'commander';
import { checkName } from '../../registry/identifiers.ts';
import { runtimeGrants } from '../../store/roles.ts';
import { loadConfig } from '../config.ts';
import { CliError, type CliIo } from './io.ts';

/** `devid-ca migrate` and `devid-ca db`: PostgreSQL administration, in a process of its own. */
export function addCommands(program: Command, io: CliIo): void {
  program
    .command('migrate')
    .description('PostgreSQL: apply pending schema migrations as the owner role (DEVID_DATABASE_OWNER_URL) and grant the server role (DEVID_DATABASE_URL) what it needs')
    .action(async () => {
      const config = loadConfig();
      if (config.database.kind !== 'postgres') throw new CliError('migrate is for PostgreSQL; with the embedded PGlite database, init and serve migrate by themselves');
      const { migrate, openDatabase } = await import('../../store/database.ts');
      const db = openDatabase(config.database, { timeoutMs: config.databaseTimeoutMs });
      try {
        const applied = await migrate(db, config.database);
        io.say(`${applied.length === 0 ? 'no migration pending; schema' : `${applied.length} migration(s) applied; schema`} current${config.database.ownerUrl ? ', grants to the server role applied' : ''}`);
      } finally {
        await db.destroy();
      }
    });
  program
    .command('db')
    .description('database administration')
    .command('grants <role>')
    .description("print the SQL that gives the server's PostgreSQL role least privilege (what migrate applies with DEVID_DATABASE_OWNER_URL)")
    .action((role: string) => {
      io.out(`${runtimeGrants(checkName('role', role)).map((statement) => `${statement};`).join('\n')}\n`);
    });
}
