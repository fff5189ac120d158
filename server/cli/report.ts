import type { Command } from 'commander';
import { checkModelName, checkName } from '../../registry/identifiers.ts';
import { rotationCsv, rotationReport } from '../../registry/reports/rotation-report.ts';
import type { CliIo } from './io.ts';

/** `devid-ca report rotation`: the devices that need attention. */
export function addCommands(program: Command, io: CliIo): void {
  program
    .command('report')
    .description('reports')
    .command('rotation')
    .description('devices overdue for rotation, expired or revoked without successor, never enrolled or not re-attested, by class, model and owner')
    .option('--csv', 'one line per device, as CSV')
    .option('--class <class>')
    .option('--model <model>')
    .option('--owner <owner>')
    .action((options: { csv?: boolean; class?: string; model?: string; owner?: string }) =>
      io.withContext(async (ctx) => {
        const filter = {
          ...(options.class ? { class: checkName('class', options.class) } : {}),
          ...(options.model ? { model: checkModelName(options.model) } : {}),
          ...(options.owner ? { owner: checkName('owner', options.owner) } : {}),
        };
        const report = await rotationReport(ctx.store, filter, ctx.clock());
        io.out(options.csv ? rotationCsv(report) : `${JSON.stringify(report, null, 2)}\n`);
      }),
    );
}
