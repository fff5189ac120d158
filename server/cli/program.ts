import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { projectFile } from '../project-files.ts';
import type { AddCommands, CliIo, RunCli } from './io.ts';

/** The command groups in the order --help lists them: each file is loaded only for a command line that names one of its commands. */
const GROUPS: { commands: string[]; load: () => Promise<{ addCommands: AddCommands }> }[] = [
  { commands: ['init', 'serve'], load: () => import('./init-and-serve.ts') },
  { commands: ['identity'], load: () => import('./identity.ts') },
  { commands: ['migrate', 'db'], load: () => import('./database.ts') },
  { commands: ['token'], load: () => import('./tokens.ts') },
  { commands: ['audit'], load: () => import('./audit.ts') },
  { commands: ['ca'], load: () => import('./ca.ts') },
  { commands: ['revoke', 'crl'], load: () => import('./revocation.ts') },
  { commands: ['device'], load: () => import('./devices.ts') },
  { commands: ['device-class', 'model', 'firmware'], load: () => import('./fleet-policy.ts') },
  { commands: ['report'], load: () => import('./report.ts') },
  { commands: ['manufacturer'], load: () => import('./manufacturers.ts') },
  { commands: ['ownership'], load: () => import('./ownership.ts') },
  { commands: ['witness'], load: () => import('./witness.ts') },
];

function version(): string {
  return (JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string }).version;
}

/** The devid-ca command line, built for one run: every group for help or an unknown command, else only the one named. */
export async function buildProgram(io: CliIo, argv: readonly string[], runCli: RunCli): Promise<Command> {
  const program = new Command('devid-ca')
    .description('Private certificate authority for device fleets')
    .version(version(), '-V, --version')
    .exitOverride()
    // Argument errors are printed once, as every other error: one "devid-ca:" line.
    .configureOutput({ outputError: () => {}, writeOut: (text) => { io.out(text); }, writeErr: (text) => { io.say(text.trimEnd()); } });
  const named = GROUPS.filter((group) => group.commands.includes(argv[0] ?? ''));
  const groups = await Promise.all((named.length > 0 ? named : GROUPS).map((group) => group.load()));
  for (const group of groups) group.addCommands(program, io, runCli);
  return program;
}
