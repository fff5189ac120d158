import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import { LOCAL_COMMANDS, adminSocketPath, type AdminFrame } from '../admin-socket.ts';
import { loadConfig } from '../config.ts';
import { stderrLines } from './output.ts';

/** Commands that need no database either: they run here even while a server runs. */
const OFFLINE = ['audit verify-export', 'ownership verify'];

/**
 * `devid-ca`: runs the command through the running server's admin socket
 * when there is one (the only way with PGlite while it serves), else in this
 * process. Returns the exit status; undefined when no server answered.
 */
function throughServer(path: string, argv: string[]): Promise<number | undefined> {
  return new Promise((resolve) => {
    const socket = connect(path);
    let buffered = '';
    let status: number | undefined;
    let answered = false;
    const lines = stderrLines();
    socket.once('connect', () => {
      answered = true;
      socket.write(`${JSON.stringify(argv)}\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('utf8');
      for (let end = buffered.indexOf('\n'); end >= 0; end = buffered.indexOf('\n')) {
        const value = JSON.parse(buffered.slice(0, end)) as AdminFrame;
        buffered = buffered.slice(end + 1);
        if ('o' in value) process.stdout.write(value.o);
        else if ('e' in value) lines.say(value.e);
        else if ('p' in value) lines.progress(value.p);
        else status = value.x;
      }
    });
    // A socket file with nobody behind it (a server that was killed): run here.
    socket.on('error', () => resolve(answered ? 1 : undefined));
    socket.on('close', () => resolve(answered ? (status ?? 1) : undefined));
  });
}

/** File arguments are the caller's: absolute before they travel to the server, whose working directory differs. */
function absolutePaths(args: string[]): string[] {
  return args.map((arg, i) => {
    if (PATH_OPTIONS.includes(args[i - 1] ?? '')) return resolve(arg);
    const inline = PATH_OPTIONS.find((option) => arg.startsWith(`${option}=`));
    return inline ? `${inline}=${resolve(arg.slice(inline.length + 1))}` : arg;
  });
}
const PATH_OPTIONS = ['--out', '--checkpoint', '--file', '--certs', '--crl-file', '--signature', '--signer', '--birth-cert', '--trust'];

const argv = absolutePaths(process.argv.slice(2));
let path: string | undefined;
try {
  path = adminSocketPath(loadConfig().dataDir);
} catch {
  path = undefined; // a bad setting: the local run says which
}
const local = argv.length === 0 || argv[0]!.startsWith('-') || LOCAL_COMMANDS.has(argv[0]!) || OFFLINE.includes(argv.slice(0, 2).join(' '));
const remote = !local && path && existsSync(path) ? await throughServer(path, argv) : undefined;
// The command line parser and the command's own code load only to run here: a command for the server starts quickly.
if (remote === undefined) {
  await import('reflect-metadata'); // before any @peculiar/x509: it resolves its algorithms through tsyringe
  const [{ localIo }, { runCli }] = await Promise.all([import('./local-io.ts'), import('./run.ts')]);
  process.exitCode = await runCli(argv, localIo());
} else {
  process.exitCode = remote;
}
