import { Option, type Command } from 'commander';
import { createToken, revokeToken } from '../tokens.ts';
import { CliError, type CliIo } from './io.ts';

/** `devid-ca token`: bearer tokens, shown once and stored as a hash. */
export function addCommands(program: Command, io: CliIo): void {
  const token = program.command('token').description('bearer tokens for factory lines, operators, auditors and vendors');

  token
    .command('create')
    .description('print a new token; it is shown once and stored only as a hash')
    .addOption(new Option('--role <role>', 'the token role').choices(['factory', 'operator', 'auditor', 'vendor']).makeOptionMandatory())
    .option('--name <principal>', 'the principal the token belongs to (default <role>-<id>)')
    .option('--line <id>', 'factory line id (factory tokens)')
    .option('--models <a,b>', 'models the factory line may request (default: all)')
    .option('--vendor <id>', 'vendor id (vendor tokens)')
    .option('--json', 'print {"id","token","role","name"} on one line')
    .action((options: { role: string; name?: string; line?: string; models?: string; vendor?: string; json?: boolean }) =>
      io.withContext(async (ctx) => {
        const models = options.models?.split(',').map((m) => m.trim()).filter(Boolean);
        const { json, ...request } = options;
        const created = await createToken(ctx.store, ctx.audit, { ...request, models }, io.actor, ctx.clock());
        if (json) io.out(`${JSON.stringify(created)}\n`);
        else io.out(`${created.token}\n`) && io.say(`token ${created.id} for ${created.name} (${created.role}); store it now, it is not shown again`);
      }),
    );

  token
    .command('revoke <id>')
    .description('revoke a token by its id')
    .action((id: string) =>
      io.withContext(async (ctx) => {
        if (!(await revokeToken(ctx.store, ctx.audit, id, io.actor, ctx.clock()))) throw new CliError(`no live token with id ${id}`);
        io.say(`token ${id} revoked`);
      }),
    );

  token
    .command('list')
    .description('list tokens (ids, roles and principals; never secrets)')
    .action(() =>
      io.withContext(async (ctx) => {
        io.out('ID\tROLE\tPRINCIPAL\tSTATE\tSCOPE\n');
        for (const t of await ctx.store.tokens.list()) {
          const scope = [t.line && `line=${t.line}`, t.models && `models=${t.models.join(',')}`, t.vendor && `vendor=${t.vendor}`].filter(Boolean).join(' ');
          io.out(`${t.id}\t${t.role}\t${t.principal}\t${t.revokedAt ? 'revoked' : 'live'}\t${scope}\n`);
        }
      }),
    );
}
