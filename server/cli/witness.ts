import type { Command } from 'commander';
import type { ParsedVerifierKey } from '../../registry/tlog/signed-note.ts';
import { CliError, type CliIo } from './io.ts';

/** `devid-ca witness`: a C2SP tlog-witness that another organisation runs beside a devid-ca log (docs/operators/witnesses.md). */
export function addCommands(program: Command, io: CliIo): void {
  const witness = program.command('witness').description('a transparency log witness: cosigns a log\'s checkpoints after checking that it only grew');
  witness
    .command('init')
    .description('make the witness\'s Ed25519 key in a new file (0600) and print its verifier key for the log operators')
    .requiredOption('--name <name>', 'the witness\'s name, a schema-less URL such as witness.example.org/w1')
    .requiredOption('--key <file>', 'the private key file to create')
    .action(async (options: { name: string; key: string }) => {
      const { createWitnessKeyFile, loadWitnessKey, witnessVerifierKey } = await import('../witness/witness-files.ts');
      const { isValidKeyName } = await import('../../registry/tlog/signed-note.ts');
      if (!isValidKeyName(options.name)) throw new CliError(`--name "${options.name}" is not a valid key name (no spaces, no "+")`);
      try {
        createWitnessKeyFile(options.key);
      } catch (err) {
        throw new CliError(`cannot create ${options.key}: ${(err as Error).message}`);
      }
      io.out(`${witnessVerifierKey(loadWitnessKey(options.key, options.name))}\n`);
    });
  witness
    .command('serve')
    .description('answer POST /add-checkpoint for the logs given, keeping the last cosigned size and root of each in the state file')
    .requiredOption('--name <name>', 'the witness\'s name, as given to witness init')
    .requiredOption('--key <file>', 'the witness\'s private key file (witness init)')
    .requiredOption('--state <file>', 'the state file: the latest cosigned checkpoint of each log (created when missing)')
    .requiredOption('--log <key>', 'a log\'s verifier key (GET /log/key); its name is the log\'s origin; repeat for more logs', (value: string, all: string[] = []) => [...all, value])
    .option('--listen <host:port>', 'where to listen', '127.0.0.1:8090')
    .action(async (options: { name: string; key: string; state: string; log: string[]; listen: string }) => {
      const { loadWitnessKey, witnessVerifierKey } = await import('../witness/witness-files.ts');
      const { startWitness } = await import('../witness/witness-server.ts');
      const { ED25519_TYPE, parseVerifierKey } = await import('../../registry/tlog/signed-note.ts');
      const { parseListen } = await import('../config.ts');
      const { stopSignal } = await import('../workers.ts');
      const logs = new Map<string, ParsedVerifierKey[]>();
      for (const text of options.log) {
        const key = parseVerifierKey(text, [ED25519_TYPE]);
        if (!key) throw new CliError(`--log "${text}" is not a log verifier key <name>+<hash>+<base64> of an Ed25519 key`);
        logs.set(key.name, [...(logs.get(key.name) ?? []), key]);
      }
      let key;
      try {
        key = loadWitnessKey(options.key, options.name);
      } catch (err) {
        throw new CliError(`cannot read the witness key ${options.key}: ${(err as Error).message}`);
      }
      const listen = (() => {
        try {
          return parseListen('--listen', options.listen);
        } catch (err) {
          throw new CliError((err as Error).message);
        }
      })();
      const running = await startWitness({
        key, logs, statePath: options.state, listen, clock: () => new Date(),
        onRefusal: (status, reason, body) => io.say(`refused (${status}): ${reason}; the submission was: ${JSON.stringify(body)}`),
      }).catch((err: unknown) => { throw new CliError(err instanceof Error ? err.message : String(err)); });
      io.say(`witness ${witnessVerifierKey(key)} listening on ${listen.host}:${running.port} for ${[...logs.keys()].join(', ')}`);
      await stopSignal();
      await running.close();
    });
}
