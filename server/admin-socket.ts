import { chmodSync, existsSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { CliIo, RunCli } from './cli/io.ts';
import type { Context } from './context.ts';
import type { Logger } from '../platform/logger.ts';

/** The admin channel's file in the data directory (mode 0600, in a 0700 directory: only the CA's own user reaches it). */
export function adminSocketPath(dataDir: string): string {
  return join(dataDir, 'admin.sock');
}

/** Commands that never run inside the server: they start, create or replace it, or need no database. */
export const LOCAL_COMMANDS = new Set(['init', 'serve', 'ca', 'migrate', 'db', 'witness', 'help', '--help', '-h', '--version', '-V']);

/** One request: the command line as an array of arguments, on one line of at most this many bytes. */
const REQUEST_LIMIT = 64 * 1024;

/** Frames of the answer, one JSON object per line: stdout text, a stderr line, the exit status. */
/** Output, a "devid-ca:" line, a progress line (the client shows it on a terminal only), the exit status. */
export type AdminFrame = { o: string } | { e: string } | { p: string } | { x: number };

const frame = (value: AdminFrame) => `${JSON.stringify(value)}\n`;

/**
 * The CLI against a running server (docs/operators/configuration.md): with the embedded
 * PGlite database only one process may open it, so `devid-ca <command>`
 * sends its arguments here and the server runs the same command, in its own
 * context, streaming the output back. One implementation of each command
 * serves both ways (server/cli/): `runCli` runs them.
 */
export async function startAdminSocket(ctx: Context, logger: Logger, runCli: RunCli, publication?: CliIo['publication']): Promise<{ close(): Promise<void> }> {
  const path = adminSocketPath(ctx.config.dataDir);
  // A socket left by a server that was killed: this process holds the data directory now.
  if (existsSync(path)) unlinkSync(path);
  const server: Server = createServer((socket) => {
    // A client that goes away (Ctrl-C during an export) ends its command, never the server.
    socket.on('error', () => socket.destroy());
    serveOne(socket, ctx, runCli, publication).catch((err: unknown) => {
      logger.error({ err }, 'admin command failed');
      socket.destroy();
    });
  });
  // Created 0600 from the start: no moment when another user could connect.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(path, 0o600);
  return {
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      if (existsSync(path)) unlinkSync(path);
    }),
  };
}

/** The request line; the socket stays open for the answer (an async iterator would close it on return). */
function readRequest(socket: Socket): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const onData = (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      const end = buffered.indexOf('\n');
      if (end < 0) {
        if (buffered.length > REQUEST_LIMIT) finish(new Error('the request is too long'));
        return;
      }
      try {
        const argv = JSON.parse(buffered.slice(0, end)) as unknown;
        if (!Array.isArray(argv) || !argv.every((a) => typeof a === 'string')) throw new Error('the request is not a list of arguments');
        finish(undefined, argv as string[]);
      } catch (err) {
        finish(err as Error);
      }
    };
    const onEnd = () => finish(new Error('the request ended before its line'));
    const finish = (err?: Error, argv?: string[]) => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      if (err) reject(err);
      else resolve(argv!);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  });
}

async function serveOne(socket: Socket, ctx: Context, runCli: RunCli, publication: CliIo['publication']): Promise<void> {
  const argv = await readRequest(socket);
  const send = (value: AdminFrame) => socket.write(frame(value));
  // The command must come first: `-- serve` or an option before it would dispatch what must stay local.
  if (argv.length === 0 || argv[0]!.startsWith('-') || LOCAL_COMMANDS.has(argv[0]!)) {
    send({ e: `${argv[0] ?? 'no command'} runs in its own process, not through the running server` });
    socket.end(frame({ x: 1 }));
    return;
  }
  const stdout = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (socket.destroyed) return done(new Error('the client went away'));
      socket.write(frame({ o: chunk.toString('utf8') }), (err) => done(err ?? undefined));
    },
  });
  const status = await runCli(argv, {
    out: (text) => send({ o: text }),
    stdout,
    say: (line) => { send({ e: line }); },
    progress: (line) => { send({ p: line }); },
    exit: () => {},
    // The server's own context: its database connection, its token sessions; not closed after the command.
    withContext: (work) => work(ctx),
    actor: `cli:${process.getuid?.() ?? 0}`,
    ...(publication ? { publication } : {}),
  });
  socket.end(frame({ x: status }));
}
