import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { malformed } from '../../errors/domain-error.ts';
import { checkName, checkSerial, checkText } from '../../registry/identifiers.ts';
import { readText } from './files.ts';
import { cliPrincipal as principalOf, type CliIo } from './io.ts';

/** `devid-ca ownership`: statements that hand a device from one CA to another (docs/operators/manufacturers.md). */
export function addCommands(program: Command, io: CliIo): void {
  const say = (line: string) => io.say(line);
  const cliPrincipal = principalOf(io);
  const ownership = program.command('ownership').description('ownership statements across companies (docs/operators/manufacturers.md)');
  ownership
    .command('export <serial>')
    .description('hand a device to another company: record the transfer, sign a statement with the audit key, print the chain')
    .requiredOption('--to <owner>', 'the new owner')
    .requiredOption('--evidence <text>', 'what shows the change of hands')
    .option('--out <file>', 'write the chain here instead of stdout')
    .action((serial: string, options: { to: string; evidence: string; out?: string }) =>
      io.withContext(async (ctx) => {
        const { loadAuditKey } = await import('../../registry/audit/audit-key.ts');
        const { exportOwnership } = await import('../../registry/manufacturers/ownership-statements.ts');
        const { signer, certificate } = await loadAuditKey(ctx.provider, ctx.store);
        const root = (await ctx.store.caCertificates.all()).find((r) => r.role === 'root')!;
        const chain = await exportOwnership(ctx.store, ctx.audit, { signer, chain: [certificate, root.der] }, cliPrincipal(), checkSerial(serial), checkName('to', options.to), checkText('evidence', options.evidence, 2048), ctx.clock());
        const text = `${JSON.stringify(chain, null, 2)}\n`;
        if (options.out) writeFileSync(options.out, text);
        else io.out(text);
        say(`device ${serial} handed to ${options.to}: ${chain.statements.length} statement(s) in the chain`);
      }),
    );
  ownership
    .command('import')
    .description('claim a device handed over by another CA, from its ownership chain')
    .requiredOption('--file <json>', 'the chain {"statements": [...]}')
    .requiredOption('--manufacturer <id>', 'the manufacturer whose anchor vouches for its birth certificate')
    .requiredOption('--model <model>', 'its model')
    .option('--issuer <id>', 'the manufacturer entry of the handing CA (default: --manufacturer)')
    .action((options: { file: string; manufacturer: string; model: string; issuer?: string }) =>
      io.withContext(async (ctx) => {
        const { importOwnership } = await import('../../registry/manufacturers/ownership-statements.ts');
        const chain = JSON.parse(readText(options.file, 'the chain')) as { statements?: unknown };
        const imported = await importOwnership(ctx.store, ctx.audit, cliPrincipal(), { statements: chain.statements, manufacturer: options.manufacturer, model: options.model, ...(options.issuer ? { issuer: options.issuer } : {}) }, ctx.clock());
        say(`device ${imported.device} claimed, owned by ${imported.owner}`);
      }),
    );
  ownership
    .command('verify')
    .description('check an ownership chain offline, with no database and no HSM, against the CA roots you trust')
    .requiredOption('--file <json>', 'the chain {"statements": [...]}')
    .requiredOption('--trust <pem>', 'a PEM file with the root certificate(s) of the CAs that may sign statements')
    .action(async (options: { file: string; trust: string }) => {
      const { pemCertificates } = await import('../../registry/manufacturers/manufacturers.ts');
      const { verifyOwnershipChain } = await import('../../registry/manufacturers/ownership-statements.ts');
      let chain: unknown;
      try {
        chain = JSON.parse(readText(options.file, 'the chain'));
      } catch (err) {
        throw malformed(`${options.file}: ${(err as Error).message}`);
      }
      const statements = verifyOwnershipChain(chain, pemCertificates(readText(options.trust, 'the trusted roots'), '--trust'), new Date());
      const last = statements.at(-1)!;
      io.out(`OK: device ${last.device}, birth certificate ${last.birthCertificateSha256}, ${statements.map((s) => s.to).join(' -> ')} (${statements.length} statement(s))\n`);
    });
}
