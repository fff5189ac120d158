import type { Command } from 'commander';
import type { initialise } from '../ceremonies.ts';
import type { Context } from '../context.ts';
import { loadConfig } from '../config.ts';
import { reportServing, runWorkers, stopSignal, workerIndex } from '../workers.ts';
import { CliError, type CliIo, type RunCli } from './io.ts';

function printInitSummary(say: (line: string) => void, ctx: Context, result: Awaited<ReturnType<typeof initialise>>): void {
  for (const issuer of result.hierarchy.issuers) {
    say(`${issuer.slug} CA ${issuer.certificate.subject} serial ${issuer.record.serial} key ${issuer.key.label} (${issuer.key.curve})`);
  }
  say(`initialised in ${ctx.config.dataDir} for ${result.identity.publicHost}`);
}

/** `devid-ca init` and `devid-ca serve`: they create or run the CA, always in their own process. */
export function addCommands(program: Command, io: CliIo, runCli: RunCli): void {
  const say = (line: string) => io.say(line);
  program
    .command('init')
    .description('create the token, CA keys, hierarchy, database schema and server certificate')
    .option('--firmware', 'also create the firmware intermediate (devid-firmware), which certifies the firmware signers')
    .action((options: { firmware?: boolean }) =>
      io.withContext(async (ctx) => {
        const { initialise } = await import('../ceremonies.ts');
        printInitSummary(say, ctx, await initialise(ctx, say, { firmware: options.firmware === true }));
      }, true),
    );

  program
    .command('serve')
    .description('start the HTTPS and HTTP listeners')
    .option('--init-if-empty', 'run init first when no hierarchy exists yet (npm start)')
    .option('--workers <n>', 'server processes sharing the listeners, to use every core (PostgreSQL only)', '1')
    .action(async (options: { initIfEmpty?: boolean; workers: string }) => {
      if (!/^[1-9]\d?$/.test(options.workers)) throw new CliError('--workers is a number of processes, 1 to 99');
      const workers = Number(options.workers);
      const worker = workerIndex();
      if (workers > 1 && worker === undefined) {
        if (loadConfig().database.kind !== 'postgres') throw new CliError('--workers needs PostgreSQL (DEVID_DATABASE_URL): the embedded PGlite database serves one process');
        // The primary initialises once, before any worker starts, then only watches them.
        if (options.initIfEmpty) {
          await io.withContext(async (ctx) => {
            const { initialiseIfEmpty } = await import('../ceremonies.ts');
            const created = await initialiseIfEmpty(ctx, say);
            if (created) printInitSummary(say, ctx, created);
          }, true);
        }
        await runWorkers(io, workers);
        return;
      }
      // The server's code (HTTP, ACME, publication) loads while the database starts.
      const serving = import('../serve.ts');
      serving.catch(() => {}); // a failure is thrown where it is awaited
      await io.withContext(async (ctx) => {
        if (options.initIfEmpty && worker === undefined) {
          const { initialiseIfEmpty } = await import('../ceremonies.ts');
          const created = await initialiseIfEmpty(ctx, say);
          if (created) printInitSummary(say, ctx, created);
        }
        // The admin socket runs the same commands, for the CLI of another shell.
        const { serve } = await serving;
        const running = await serve(ctx, { ...(worker === undefined ? {} : { worker }), adminCommands: runCli });
        if (worker === undefined) say(`serving HTTPS on ${ctx.config.listen.host}:${running.httpsPort} and HTTP on ${ctx.config.httpListen.host}:${running.httpPort}`);
        reportServing({ https: running.httpsPort, http: running.httpPort });
        await stopSignal();
        if (worker === undefined) say('stopping');
        await running.close();
      }, options.initIfEmpty === true && worker === undefined);
      // A worker's channel to the primary would keep it alive once everything else has closed.
      if (worker !== undefined) process.disconnect?.();
    });
}
