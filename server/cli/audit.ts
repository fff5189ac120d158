import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Command } from 'commander';
import type { Checkpoint } from '../../registry/audit/audit-checkpoints.ts';
import type { ExportScope } from '../../registry/audit/audit-export.ts';
import { checkBatch, checkSerial } from '../../registry/identifiers.ts';
import type { CheckpointRecord } from '../../store/types.ts';
import type { TlogReport } from '../../registry/tlog/tlog-verify.ts';
import type { Context } from '../context.ts';
import { CliError, type CliIo } from './io.ts';

/** Checkpoints an auditor kept: the GET /audit/v1/checkpoints document, or a single checkpoint. */
async function readExportedCheckpoints(path: string): Promise<CheckpointRecord[]> {
  const { fromExported } = await import('../../registry/audit/audit-verify.ts');
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CliError(`cannot read checkpoints from ${path}: ${(err as Error).message}`);
  }
  const list = Array.isArray((parsed as { checkpoints?: unknown }).checkpoints) ? (parsed as { checkpoints: unknown[] }).checkpoints : [parsed];
  return list.map((item, i) => {
    const c = item as Partial<Checkpoint>;
    if (typeof c?.seq !== 'number' || typeof c.head !== 'string' || typeof c.at !== 'string' || typeof c.key !== 'string' || typeof c.signature !== 'string') {
      throw new CliError(`${path}: checkpoint ${i} lacks seq, head, at, key or signature`);
    }
    return fromExported(c as Checkpoint);
  });
}

/** The Merkle log's check, with the log key as the token holds it under the name the CA's identity gives it. */
async function verifyMerkleLog(ctx: Context): Promise<TlogReport> {
  const { loadIdentity } = await import('../identity.ts');
  const { LOG_KEY_LABEL, logOrigin } = await import('../../registry/tlog/log-key.ts');
  const { verifyTlog } = await import('../../registry/tlog/tlog-verify.ts');
  const identity = await loadIdentity(ctx.store);
  const key = identity && !(await ctx.provider.ed25519Unsupported()) ? await ctx.provider.findEd25519Key(LOG_KEY_LABEL) : undefined;
  return verifyTlog(ctx.store, key && identity ? { name: logOrigin(identity.httpBaseUrl), publicKey: key.publicKey, rawPublicKey: key.rawPublicKey } : undefined);
}

/** `audit export --device S --proofs`: the device's entries with their proofs and the checkpoint, one JSON line. */
async function exportDeviceProofs(ctx: Context, io: CliIo, options: { device?: string; batch?: string; out?: string; size?: string }): Promise<void> {
  const { deviceProofExport } = await import('../../registry/audit/audit-export.ts');
  if (!options.device || options.batch) throw new CliError('--proofs exports one device: give --device <serial>');
  if (options.size !== undefined && !/^(0|[1-9]\d{0,15})$/.test(options.size)) throw new CliError('--size is a tree size in decimal (a published checkpoint\'s)');
  const serial = checkSerial(options.device);
  if (!(await ctx.store.devices.find(serial))) throw new CliError(`no device ${serial}`);
  const size = options.size === undefined ? undefined : Number(options.size);
  const text = await deviceProofExport(ctx.store, serial, size);
  if (!text) throw new CliError(size === undefined ? 'the Merkle log has no checkpoint yet' : `no checkpoint was published at size ${size}`);
  await ctx.audit.recordAlone(ctx.store, { action: 'audit.exported', actor: io.actor, data: { scope: { serial }, proofs: true, size: JSON.parse(text).size } });
  if (options.out) {
    const file = await open(options.out, 'wx', 0o600).catch((err: Error) => { throw new CliError(`cannot create ${options.out}: ${err.message}`); });
    try {
      await file.write(text);
    } finally {
      await file.close();
    }
  } else {
    io.out(text);
  }
  io.say(`export complete: ${(JSON.parse(text) as { entries: unknown[] }).entries.length} entries of ${serial}${options.out ? ` in ${options.out}` : ''}`);
}

/** `audit verify-export FILE --log-key KEY`: a per-device export, checked with the log's verifier key alone. */
async function verifyDeviceProofs(io: CliIo, file: string, logKey: string, options: { device?: string; json?: boolean }): Promise<void> {
  const { verifyDeviceExport } = await import('../../registry/audit/device-export-verify.ts');
  let key = logKey;
  if (!/^[^+\s]+\+[0-9a-f]{8}\+/.test(logKey)) {
    try {
      key = readFileSync(logKey, 'utf8').trim();
    } catch (err) {
      throw new CliError(`--log-key is neither a verifier key nor a readable file: ${(err as Error).message}`);
    }
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`);
  }
  const report = verifyDeviceExport(text, key, options.device === undefined ? undefined : checkSerial(options.device));
  if (!report.ok) io.exit(1);
  if (options.json) io.out(`${JSON.stringify(report)}\n`);
  else if (report.ok) io.out(`OK: ${report.entries} entries of ${report.serial}, each proved in the checkpoint of size ${report.size} signed by the log key\n`);
  else io.out(`FAILED:\n${report.problems.map((p) => `  ${p}`).join('\n')}\n`);
}

/** `devid-ca audit`: verify the chain, export it for an auditor, check an export offline, sign a checkpoint. */
export function addCommands(program: Command, io: CliIo): void {
  const say = (line: string) => io.say(line);
  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('recompute the whole hash chain and check the signed checkpoints; exit 1 and name the event when broken')
    .option('--json', 'print the report as JSON')
    .option('--checkpoint <file>', 'also check checkpoints exported earlier (GET /audit/v1/checkpoints, or one checkpoint)')
    .action((options: { json?: boolean; checkpoint?: string }) =>
      io.withContext(async (ctx) => {
        const { loadAuditKey } = await import('../../registry/audit/audit-key.ts');
        const { verifyAudit } = await import('../../registry/audit/audit-verify.ts');
        const external = options.checkpoint ? await readExportedCheckpoints(options.checkpoint) : [];
        const { signer } = await loadAuditKey(ctx.provider, ctx.store);
        const report = await verifyAudit(ctx.store, ctx.audit, signer.key.publicKey, external, (events) => { if (!options.json) io.progress(`${events} events verified`); });
        // The Merkle log: rebuilt from the events, against the stored tiles and the latest checkpoint.
        const tlog = report.ok ? await verifyMerkleLog(ctx) : undefined;
        if (!report.ok || tlog?.ok === false) io.exit(1);
        if (options.json) io.out(`${JSON.stringify(tlog ? { ...report, tlog } : report)}\n`);
        else if (!report.ok) io.out(`FAILED at event ${report.brokenAt}: ${report.reason}\n`);
        else {
          io.out(`OK: ${report.events} events, head ${report.head}, ${report.checkpoints} signed checkpoints${report.latestCheckpoint ? ` (latest at event ${report.latestCheckpoint.seq}, ${report.latestCheckpoint.at})` : ''}\n`);
          if (tlog?.ok) io.out(`OK: Merkle log, ${tlog.entries} entries in tiles${tlog.checkpoint ? `, checkpoint at size ${tlog.checkpoint.size} (root ${tlog.checkpoint.root})` : ', no checkpoint yet'}\n`);
          else if (tlog) io.out(`FAILED: Merkle log: ${tlog.reason}\n`);
        }
      }),
    );

  audit
    .command('export')
    .description('the auditor\'s export as JSON lines (every certificate, every event, the checkpoints), signed by the audit key as a whole')
    .option('--device <serial>', 'one device')
    .option('--batch <batch>', 'one batch')
    .option('--out <file>', 'write to a file (0600) instead of stdout')
    .option('--proofs', 'with --device: only the device\'s entries of the Merkle log, their inclusion proofs and the signed checkpoint')
    .option('--size <n>', 'with --proofs: the size of a published checkpoint (the latest when absent)')
    .action((options: { device?: string; batch?: string; out?: string; proofs?: boolean; size?: string }) =>
      io.withContext(async (ctx) => {
        if (options.proofs || options.size !== undefined) return exportDeviceProofs(ctx, io, options);
        const { exportLines } = await import('../../registry/audit/audit-export.ts');
        const { loadAuditKey } = await import('../../registry/audit/audit-key.ts');
        if (options.device && options.batch) throw new CliError('export one device, one batch, or (with neither) the whole fleet');
        const scope: ExportScope = options.device ? { serial: checkSerial(options.device) } : options.batch ? { batch: checkBatch(options.batch) } : {};
        const { signer } = await loadAuditKey(ctx.provider, ctx.store);
        await ctx.audit.recordAlone(ctx.store, { action: 'audit.exported', actor: io.actor, data: { scope } });
        // A file is written through a handle (its errors are rejections, never a stray stream event); stdout respects backpressure.
        const file = options.out ? await open(options.out, 'wx', 0o600).catch((err: Error) => { throw new CliError(`cannot create ${options.out}: ${err.message}`); }) : undefined;
        let lines = 0;
        let pending = '';
        const flush = async () => {
          if (file) await file.write(pending);
          else if (!io.stdout.write(pending)) await new Promise<void>((resolve) => io.stdout.once('drain', () => resolve()));
          pending = '';
        };
        try {
          for await (const line of exportLines(ctx.store, signer, scope, ctx.clock())) {
            pending += line;
            if (pending.length >= 1 << 16) await flush();
            lines += 1;
            if (lines % 10_000 === 0) io.progress(`${lines} lines exported`);
          }
          await flush();
        } finally {
          await file?.close();
        }
        say(`export complete: ${lines} lines${options.out ? ` in ${options.out}` : ''}`);
      }),
    );

  audit
    .command('verify-export <file>')
    .description('check an export offline, with no database and no HSM, against the root certificate you trust')
    .option('--root <pem>', 'the root CA certificate (PEM) to trust (an export of the chain)')
    .option('--log-key <key>', 'the Merkle log\'s verifier key, or a file holding it (a per-device export made with --proofs)')
    .option('--device <serial>', 'with --log-key: the device the file must prove (required for a saved GET /audit/v1/devices/<serial>/proof answer)')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, options: { root?: string; logKey?: string; device?: string; json?: boolean }) => {
      if (options.logKey !== undefined) return verifyDeviceProofs(io, file, options.logKey, options);
      if (options.root === undefined) throw new CliError('give --root root.pem for an export of the chain, or --log-key KEY for a per-device export');
      const { verifyExport } = await import('../../registry/audit/export-verify.ts');
      let rootPem: string;
      try {
        rootPem = readFileSync(options.root, 'utf8');
      } catch (err) {
        throw new CliError(`cannot read the root certificate ${options.root}: ${(err as Error).message}`);
      }
      const report = await verifyExport(file, rootPem).catch((err: unknown) => {
        throw new CliError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
      });
      if (!report.ok) io.exit(1);
      if (options.json) io.out(`${JSON.stringify(report)}\n`);
      else if (report.ok) io.out(`OK: ${report.cas} CA certificates, ${report.checkpoints} checkpoints, ${report.devices} devices, ${report.certificates} certificates, ${report.events} events, ${report.manifests} firmware manifests\n`);
      else io.out(`FAILED:\n${report.problems.map((p) => `  ${p}`).join('\n')}\n`);
    });

  audit
    .command('checkpoint')
    .description('sign the current head of the chain with the audit key in the HSM, and print the checkpoint')
    .action(() =>
      io.withContext(async (ctx) => {
        const { AuditCheckpoints } = await import('../../registry/audit/audit-checkpoints.ts');
        const { loadAuditKey } = await import('../../registry/audit/audit-key.ts');
        const { signer, certificate } = await loadAuditKey(ctx.provider, ctx.store);
        const checkpoint = await new AuditCheckpoints(signer, certificate, ctx.clock).create(ctx.store);
        io.out(`${JSON.stringify(checkpoint ?? null)}\n`);
      }),
    );
}
