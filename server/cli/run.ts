import { CommanderError } from 'commander';
import type { CliIo } from './io.ts';
import { buildProgram } from './program.ts';

/**
 * Errors whose message is the whole story, printed without a stack trace.
 * Matched by name: their classes live with the HSM, CA and database code,
 * which a command loads only when it needs it.
 */
const EXPECTED = new Set(['CliError', 'OfflineKeyError', 'ConfigError', 'HsmError', 'HierarchyError', 'DataDirLockedError', 'DomainError', 'DatabaseSetupError']);

/** Runs one command line to its end: the exit status, with every error as one "devid-ca:" line. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let status = 0;
  const exit = io.exit;
  const tracked: CliIo = { ...io, exit: (code) => { status = code; exit(code); } };
  try {
    const program = await buildProgram(tracked, argv, runCli);
    await program.parseAsync([...argv], { from: 'user' });
    return status;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end this way too, with exit code 0 and their output already written.
      if (err.exitCode !== 0) io.say(`${err.message.replace(/^error: /, '')} (see devid-ca --help)`);
      return err.exitCode === 0 ? 0 : 1;
    }
    if (err instanceof Error && EXPECTED.has(err.name)) {
      io.say(err.message);
    } else {
      io.say(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
      if (process.env.DEVID_DEBUG) console.error(err);
    }
    return 1;
  }
}
