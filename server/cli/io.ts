import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { RevocationListener } from '../../registry/lifecycle/revocation-service.ts';
import type { Context } from '../context.ts';

/** Where a run of the CLI writes, which context it works in, and who it acts as: this process, or the running server for it. */
export interface CliIo {
  /** Command output (stdout). */
  out(text: string): boolean;
  /** The same as a stream, for long output that must respect backpressure (an export). */
  stdout: NodeJS.WritableStream;
  /** One "devid-ca:" line on stderr. */
  say(line: string): void;
  /** A progress line for long work, rewritten in place on a terminal; nothing in a script (stderr not a TTY, or --json). */
  progress(line: string): void;
  exit(code: number): void;
  /** Opens the context (the data directory, the token, the database), or lends the running server's. */
  withContext<T>(work: (ctx: Context) => Promise<T>, prepareToken?: boolean): Promise<T>;
  /** The audit actor: `cli:<uid>`. */
  actor: string;
  /**
   * The running server's publication, when the command runs inside it (the
   * admin socket): a revocation is signed into OCSP at once, and a CRL
   * published here is served at once, as for the HTTP API.
   */
  publication?: RevocationListener & { crlRound(): Promise<void> };
}

/** Runs one command line to its end and answers its exit status (server/cli/run.ts). */
export type RunCli = (argv: readonly string[], io: CliIo) => Promise<number>;

/** A group of commands (one file of server/cli/), added to the program only when the command line names one of them. */
export type AddCommands = (program: Command, io: CliIo, runCli: RunCli) => void;

/** A refusal whose message is the whole story: printed without a stack trace. */
export class CliError extends Error {
  override readonly name = 'CliError';
}

/** Who acts from a shell: the CLI actor, and the operating-system user as the principal (two-person rules count people). */
export type CliPrincipal = () => { actor: string; principal: string };

/** The operating-system user as the principal of ownership records and proposals. */
export function cliPrincipal(io: CliIo): CliPrincipal {
  return () => ({ actor: io.actor, principal: `cli:${userInfo().username}` });
}

/** Revocations from the command line: in its own process the CLI leaves the new OCSP responses to the server's background signer (within a second). */
export function afterCliRevocation(io: CliIo): RevocationListener {
  return io.publication ?? { revoked: async () => {} };
}
