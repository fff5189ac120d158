import type { Command } from 'commander';
import { CliError, type CliIo } from './io.ts';

/** `devid-ca ca rollover`: the root ceremony that replaces the operational intermediate. */
export function addCommands(program: Command, io: CliIo): void {
  const say = (line: string) => io.say(line);
  program
    .command('ca')
    .description('CA ceremonies')
    .command('rollover <role>')
    .description('root ceremony: a new key and intermediate for the operational CA; the old one keeps serving its certificates (restart serve)')
    .action((role: string) =>
      io.withContext(async (ctx) => {
        const { rolloverOperationalCa } = await import('../ceremonies.ts');
        if (role !== 'operational') throw new CliError('only the operational intermediate is rolled over: devid-ca ca rollover operational');
        const { previous, next } = await rolloverOperationalCa(ctx, io.actor);
        say(`retired ${previous.slug} CA serial ${previous.record.serial}; it keeps signing the CRL and OCSP of its certificates`);
        say(`new ${next.slug} CA serial ${next.record.serial} key ${next.record.keyLabel} (CKA_ID ${next.record.keyId.toString('hex')}); restart serve to issue from it`);
        io.out(`${next.certificate.toString('pem')}\n`);
      }),
    );
}
