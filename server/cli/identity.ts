import type { Command } from 'commander';
import { changeIdentity, loadIdentity } from '../identity.ts';
import { CliError, type CliIo } from './io.ts';

/** `devid-ca identity`: the public host, trust domain and HTTP base URL recorded at init. */
export function addCommands(program: Command, io: CliIo): void {
  const identity = program.command('identity').description('the public host, trust domain and HTTP base URL recorded at init');
  identity
    .command('show')
    .description('print the recorded values')
    .action(() =>
      io.withContext(async (ctx) => {
        io.out(`${JSON.stringify(await loadIdentity(ctx.store) ?? null)}\n`);
      }),
    );
  identity
    .command('set')
    .description('change recorded values; certificates issued from now on carry them (restart serve to use them)')
    .option('--public-host <host>', 'server certificate name and ACME rpIdHash')
    .option('--trust-domain <domain>', 'SPIFFE trust domain')
    .option('--http-base-url <url>', 'base of AIA and CRL distribution point URLs (http://)')
    .action((options: { publicHost?: string; trustDomain?: string; httpBaseUrl?: string }) =>
      io.withContext(async (ctx) => {
        if (Object.keys(options).length === 0) throw new CliError('give at least one of --public-host, --trust-domain, --http-base-url');
        const next = await changeIdentity(ctx.store, ctx.audit, options, io.actor);
        io.out(`${JSON.stringify(next)}\n`);
      }),
    );
}
