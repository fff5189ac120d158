import { readFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { Command, CommanderError, Option } from 'commander';
import { HierarchyError, loadHierarchy } from '../ca/hierarchy.ts';
import { OfflineKeyError } from '../ca/issuer.ts';
import { HsmError } from '../hsm/errors.ts';
import { AuditCheckpoints, type Checkpoint } from '../registry/audit-checkpoints.ts';
import { loadAuditKey } from '../registry/audit-key.ts';
import type { CheckpointRecord } from '../store/types.ts';
import { fromExported, verifyAudit } from '../registry/audit-verify.ts';
import { exportLines, type ExportScope } from '../registry/audit-export.ts';
import { verifyExport } from '../registry/export-verify.ts';
import { deviceHistory, formatHistory } from '../registry/device-history.ts';
import { checkCertificateSerial, checkModelName, checkBatch, checkName, checkSerial, checkText } from '../registry/identifiers.ts';
import { checkModelDeclaration, declareModel, modelView } from '../registry/models.ts';
import { assignDeviceClass, checkDeviceClass, deviceClassView, putDeviceClass } from '../registry/device-classes.ts';
import { checkAllowlist, setFirmwareAllowlist } from '../registry/firmware-policy.ts';
import { decommissionDevice, suspendOrResume, transferDevice } from '../registry/lifecycle.ts';
import { rotationCsv, rotationReport } from '../registry/rotation-report.ts';
import { REVOCATION_REASON_NAMES, checkReason } from '../registry/revocation.ts';
import { RevocationService, type RevocationListener } from '../registry/revocation-service.ts';
import { CrlPublisher } from '../publish/crl-publisher.ts';
import { DomainError } from '../errors/domain-error.ts';
import { ConfigError, loadConfig } from './config.ts';
import { migrate, openDatabase } from '../store/database.ts';
import { reportServing, runWorkers, stopSignal, workerIndex } from './workers.ts';
import { runtimeGrants } from '../store/roles.ts';
import { openContext, type Context } from './context.ts';
import { DataDirLockedError } from './data-lock.ts';
import { changeIdentity, loadIdentity } from './identity.ts';
import { initialise, initialiseIfEmpty, rolloverOperationalCa } from './ceremonies.ts';
import { createLogger } from './logger.ts';
import { serve } from './serve.ts';
import { createToken, revokeToken } from './tokens.ts';
import { addManufacturerCommands } from './cli-manufacturers.ts';
import { stderrLines } from './cli-output.ts';
import { projectFile } from './project-files.ts';


/** Checkpoints an auditor kept: the GET /audit/v1/checkpoints document, or a single checkpoint. */
function readExportedCheckpoints(path: string): CheckpointRecord[] {
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

/** Errors whose message is the whole story: printed without a stack trace. */
const EXPECTED = [OfflineKeyError, ConfigError, HsmError, HierarchyError, DataDirLockedError, DomainError];

const VERSION = (JSON.parse(readFileSync(projectFile('package.json'), 'utf8')) as { version: string }).version;

class CliError extends Error {}

function printInitSummary(say: (line: string) => void, ctx: Context, result: Awaited<ReturnType<typeof initialise>>): void {
  for (const issuer of result.hierarchy.issuers) {
    say(`${issuer.slug} CA ${issuer.certificate.subject} serial ${issuer.record.serial} key ${issuer.key.label} (${issuer.key.curve})`);
  }
  say(`initialised in ${ctx.config.dataDir} for ${result.identity.publicHost}`);
}

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

/** The devid-ca command line, built for one run. */
export function buildProgram(io: CliIo): Command {
  const say = (line: string) => io.say(line);
  const program = new Command('devid-ca')
    .description('Private certificate authority for device fleets')
    .version(VERSION, '-V, --version')
    .exitOverride()
    // Argument errors are printed once, as every other error: one "devid-ca:" line.
    .configureOutput({ outputError: () => {}, writeOut: (text) => { io.out(text); }, writeErr: (text) => { io.say(text.trimEnd()); } });

  program
    .command('init')
    .description('create the token, CA keys, hierarchy, database schema and server certificate')
    .action(() =>
      io.withContext(async (ctx) => {
        printInitSummary(say, ctx, await initialise(ctx, say));
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
            const created = await initialiseIfEmpty(ctx, say);
            if (created) printInitSummary(say, ctx, created);
          }, true);
        }
        await runWorkers(io, workers);
        return;
      }
      await io.withContext(async (ctx) => {
        if (options.initIfEmpty && worker === undefined) {
          const created = await initialiseIfEmpty(ctx, say);
          if (created) printInitSummary(say, ctx, created);
        }
        const running = await serve(ctx, worker === undefined ? {} : { worker });
        if (worker === undefined) say(`serving HTTPS on ${ctx.config.listen.host}:${running.httpsPort} and HTTP on ${ctx.config.httpListen.host}:${running.httpPort}`);
        reportServing({ https: running.httpsPort, http: running.httpPort });
        await stopSignal();
        if (worker === undefined) say('stopping');
        await running.close();
      }, options.initIfEmpty === true && worker === undefined);
      // A worker's channel to the primary would keep it alive once everything else has closed.
      if (worker !== undefined) process.disconnect?.();
    });

  const identity = program.command('identity').description('the public host, trust domain and HTTP base URL recorded at init');
  identity
    .command('show')
    .description('print the recorded values')
    .action(() =>
      io.withContext(async (ctx) => {
        io.out(`${JSON.stringify(await loadIdentity(ctx.store) ?? null)}\n`);
      }),
    );
  identity
    .command('set')
    .description('change recorded values; certificates issued from now on carry them (restart serve to use them)')
    .option('--public-host <host>', 'server certificate name and ACME rpIdHash')
    .option('--trust-domain <domain>', 'SPIFFE trust domain')
    .option('--http-base-url <url>', 'base of AIA and CRL distribution point URLs (http://)')
    .action((options: { publicHost?: string; trustDomain?: string; httpBaseUrl?: string }) =>
      io.withContext(async (ctx) => {
        if (Object.keys(options).length === 0) throw new CliError('give at least one of --public-host, --trust-domain, --http-base-url');
        const next = await changeIdentity(ctx.store, ctx.audit, options, io.actor);
        io.out(`${JSON.stringify(next)}\n`);
      }),
    );

  program
    .command('migrate')
    .description('PostgreSQL: apply pending schema migrations as the owner role (DEVID_DATABASE_OWNER_URL) and grant the server role (DEVID_DATABASE_URL) what it needs')
    .action(async () => {
      const config = loadConfig();
      if (config.database.kind !== 'postgres') throw new CliError('migrate is for PostgreSQL; with the embedded PGlite database, init and serve migrate by themselves');
      const db = openDatabase(config.database, { timeoutMs: config.databaseTimeoutMs });
      try {
        const applied = await migrate(db, config.database);
        say(`${applied.length === 0 ? 'no migration pending; schema' : `${applied.length} migration(s) applied; schema`} current${config.database.ownerUrl ? ', grants to the server role applied' : ''}`);
      } finally {
        await db.destroy();
      }
    });
  program
    .command('db')
    .description('database administration')
    .command('grants <role>')
    .description("print the SQL that gives the server's PostgreSQL role least privilege (what migrate applies with DEVID_DATABASE_OWNER_URL)")
    .action((role: string) => {
      io.out(`${runtimeGrants(checkName('role', role)).map((statement) => `${statement};`).join('\n')}\n`);
    });

  const token = program.command('token').description('bearer tokens for factory lines, operators, auditors and vendors');

  token
    .command('create')
    .description('print a new token; it is shown once and stored only as a hash')
    .addOption(new Option('--role <role>', 'the token role').choices(['factory', 'operator', 'auditor', 'vendor']).makeOptionMandatory())
    .option('--name <principal>', 'the principal the token belongs to (default <role>-<id>)')
    .option('--line <id>', 'factory line id (factory tokens)')
    .option('--models <a,b>', 'models the factory line may request (default: all)')
    .option('--vendor <id>', 'vendor id (vendor tokens)')
    .option('--json', 'print {"id","token","role","name"} on one line')
    .action((options: { role: string; name?: string; line?: string; models?: string; vendor?: string; json?: boolean }) =>
      io.withContext(async (ctx) => {
        const models = options.models?.split(',').map((m) => m.trim()).filter(Boolean);
        const { json, ...request } = options;
        const created = await createToken(ctx.store, ctx.audit, { ...request, models }, io.actor, ctx.clock());
        if (json) io.out(`${JSON.stringify(created)}\n`);
        else io.out(`${created.token}\n`) && say(`token ${created.id} for ${created.name} (${created.role}); store it now, it is not shown again`);
      }),
    );

  token
    .command('revoke <id>')
    .description('revoke a token by its id')
    .action((id: string) =>
      io.withContext(async (ctx) => {
        if (!(await revokeToken(ctx.store, ctx.audit, id, io.actor, ctx.clock()))) throw new CliError(`no live token with id ${id}`);
        say(`token ${id} revoked`);
      }),
    );

  token
    .command('list')
    .description('list tokens (ids, roles and principals; never secrets)')
    .action(() =>
      io.withContext(async (ctx) => {
        io.out('ID\tROLE\tPRINCIPAL\tSTATE\tSCOPE\n');
        for (const t of await ctx.store.tokens.list()) {
          const scope = [t.line && `line=${t.line}`, t.models && `models=${t.models.join(',')}`, t.vendor && `vendor=${t.vendor}`].filter(Boolean).join(' ');
          io.out(`${t.id}\t${t.role}\t${t.principal}\t${t.revokedAt ? 'revoked' : 'live'}\t${scope}\n`);
        }
      }),
    );

  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('recompute the whole hash chain and check the signed checkpoints; exit 1 and name the event when broken')
    .option('--json', 'print the report as JSON')
    .option('--checkpoint <file>', 'also check checkpoints exported earlier (GET /audit/v1/checkpoints, or one checkpoint)')
    .action((options: { json?: boolean; checkpoint?: string }) =>
      io.withContext(async (ctx) => {
        const external = options.checkpoint ? readExportedCheckpoints(options.checkpoint) : [];
        const { signer } = await loadAuditKey(ctx.provider, ctx.store);
        const report = await verifyAudit(ctx.store, ctx.audit, signer.key.publicKey, external, (events) => { if (!options.json) io.progress(`${events} events verified`); });
        if (!report.ok) io.exit(1);
        if (options.json) io.out(`${JSON.stringify(report)}\n`);
        else if (!report.ok) io.out(`FAILED at event ${report.brokenAt}: ${report.reason}\n`);
        else io.out(`OK: ${report.events} events, head ${report.head}, ${report.checkpoints} signed checkpoints${report.latestCheckpoint ? ` (latest at event ${report.latestCheckpoint.seq}, ${report.latestCheckpoint.at})` : ''}\n`);
      }),
    );

  audit
    .command('export')
    .description('the auditor\'s export as JSON lines (every certificate, every event, the checkpoints), signed by the audit key as a whole')
    .option('--device <serial>', 'one device')
    .option('--batch <batch>', 'one batch')
    .option('--out <file>', 'write to a file (0600) instead of stdout')
    .action((options: { device?: string; batch?: string; out?: string }) =>
      io.withContext(async (ctx) => {
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
    .requiredOption('--root <pem>', 'the root CA certificate (PEM) to trust')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, options: { root: string; json?: boolean }) => {
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
      else if (report.ok) io.out(`OK: ${report.cas} CA certificates, ${report.checkpoints} checkpoints, ${report.devices} devices, ${report.certificates} certificates, ${report.events} events\n`);
      else io.out(`FAILED:\n${report.problems.map((p) => `  ${p}`).join('\n')}\n`);
    });

  audit
    .command('checkpoint')
    .description('sign the current head of the chain with the audit key in the HSM, and print the checkpoint')
    .action(() =>
      io.withContext(async (ctx) => {
        const { signer, certificate } = await loadAuditKey(ctx.provider, ctx.store);
        const checkpoint = await new AuditCheckpoints(signer, certificate, ctx.clock).create(ctx.store);
        io.out(`${JSON.stringify(checkpoint ?? null)}\n`);
      }),
    );

  program
    .command('ca')
    .description('CA ceremonies')
    .command('rollover <role>')
    .description('root ceremony: a new key and intermediate for the operational CA; the old one keeps serving its certificates (restart serve)')
    .action((role: string) =>
      io.withContext(async (ctx) => {
        if (role !== 'operational') throw new CliError('only the operational intermediate is rolled over: devid-ca ca rollover operational');
        const { previous, next } = await rolloverOperationalCa(ctx, io.actor);
        say(`retired ${previous.slug} CA serial ${previous.record.serial}; it keeps signing the CRL and OCSP of its certificates`);
        say(`new ${next.slug} CA serial ${next.record.serial} key ${next.record.keyLabel} (CKA_ID ${next.record.keyId.toString('hex')}); restart serve to issue from it`);
        io.out(`${next.certificate.toString('pem')}\n`);
      }),
    );

  /** Revocations from the command line: the serving processes sign the new OCSP responses within a second (they are marked stale here). */
  // In its own process the CLI leaves the new OCSP responses to the server's background signer (within a second).
  const afterCliRevocation: RevocationListener = io.publication ?? { revoked: async () => {} };

  const revoke = program.command('revoke').description('operator revocation (docs/operators/revocation.md): a certificate, a device, or a compromised factory batch');
  const reasonOption = ['--reason <reason>', `RFC 5280 reason: ${REVOCATION_REASON_NAMES.join(', ')}`] as const;
  for (const [scope, argument, summary] of [
    ['certificate', '<serial>', 'one certificate, by its hex serial'],
    ['device', '<serial>', "every live certificate of a device, its birth certificate included"],
    ['batch', '<batch>', 'every birth certificate of a factory batch and the operational certificates derived from them; the devices are quarantined'],
  ] as const) {
    revoke
      .command(`${scope} ${argument}`)
      .description(summary)
      .requiredOption(...reasonOption)
      .action((id: string, options: { reason: string }) =>
        io.withContext(async (ctx) => {
          const reason = checkReason(options.reason);
          const service = new RevocationService(ctx.store, ctx.audit, afterCliRevocation, ctx.clock);
          if (scope === 'certificate') {
            const { record, revokedNow } = await service.certificate(checkCertificateSerial(id), reason, io.actor);
            say(revokedNow ? `revoked ${record.kind} certificate ${record.serial} (${reason})` : `certificate ${record.serial} was already revoked: its first reason and time stand`);
          } else if (scope === 'device') {
            const revoked = await service.device(checkSerial(id), reason, io.actor);
            say(`revoked ${revoked.length} certificate(s) of device ${id}${revoked.map((r) => `\n  ${r.kind} ${r.serial}`).join('')}`);
          } else {
            const batch = checkBatch(id);
            const done = await service.batch(batch, reason, io.actor, (progress) => {
              if (!progress.finished) io.progress(`batch ${batch}: ${progress.devices} devices, ${progress.certificates} certificates revoked so far`);
            });
            say(`batch ${batch} revoked: ${done.devices} devices quarantined or already out of service, ${done.certificates} certificates revoked`);
          }
        }),
      );
  }

  program
    .command('crl')
    .description('certificate revocation lists')
    .command('publish')
    .description('sign a new CRL for each intermediate now (serve does it on its own); with --root, the root CRL in a root ceremony')
    .option('--root', "sign the root's CRL (valid a year): the root key must be in the token")
    .action((options: { root?: boolean }) =>
      io.withContext(async (ctx) => {
        const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, ctx.store, { allowOfflineRoot: !options.root });
        const publisher = new CrlPublisher(ctx.store, ctx.clock, ctx.config.crl);
        const issuers = options.root ? [hierarchy.root] : hierarchy.issuers.filter((issuer) => issuer.role !== 'root' && issuer.online);
        for (const issuer of issuers) {
          const published = (await publisher.publish(issuer, { force: true }))!;
          say(`${issuer.slug}: CRL number ${published.record.number} with ${published.record.entries} entries, next update ${published.record.nextUpdate.toISOString()}`);
        }
        await io.publication?.crlRound();
      }),
    );

  const device = program.command('device').description('device registry and lifecycle (docs/operators/lifecycle.md); each action is audited with actor cli:<uid>');
  /** Who acts from a shell: the operating-system user, as the principal of ownership records. */
  const cliPrincipal = () => ({ actor: io.actor, principal: `cli:${userInfo().username}` });
  device
    .command('transfer <serial>')
    .description('record a new owner (the chain of owners is kept)')
    .requiredOption('--to <owner>', 'the new owner')
    .requiredOption('--evidence <text>', 'what shows the change of hands (contract, order, ticket)')
    .action((serial: string, options: { to: string; evidence: string }) =>
      io.withContext(async (ctx) => {
        const moved = await transferDevice(ctx.store, ctx.audit, cliPrincipal(), checkSerial(serial), checkName('to', options.to), checkText('evidence', options.evidence, 2048, { multiline: true }), ctx.clock());
        say(`device ${moved.serial}: ${moved.from ?? '(no owner)'} -> ${moved.to}`);
      }),
    );
  device
    .command('decommission <serial>')
    .description('retire a device: revoke every certificate, refuse enrollment until it is reprovisioned')
    .requiredOption('--reason <text>', 'why')
    .action((serial: string, options: { reason: string }) =>
      io.withContext(async (ctx) => {
        const { revoked } = await decommissionDevice(ctx.store, ctx.audit, afterCliRevocation, io.actor, checkSerial(serial), checkText('reason', options.reason, 1024), ctx.clock());
        say(`device ${serial} decommissioned; ${revoked.length} certificate(s) revoked`);
      }),
    );
  for (const transition of ['suspend', 'resume'] as const) {
    device
      .command(`${transition} <serial>`)
      .description(transition === 'suspend' ? 'stop enrollment and renewal of an active device' : 'let a suspended device enroll and renew again')
      .action((serial: string) =>
        io.withContext(async (ctx) => {
          const moved = await suspendOrResume(ctx.store, ctx.audit, io.actor, checkSerial(serial), transition, ctx.clock());
          say(`device ${moved.serial} is ${moved.state}`);
        }),
      );
  }
  device
    .command('class <serial> <class>')
    .description("set the device's class (from its next renewal)")
    .action((serial: string, className: string) =>
      io.withContext(async (ctx) => {
        const set = await assignDeviceClass(ctx.store, ctx.audit, io.actor, checkSerial(serial), checkName('class', className), ctx.clock());
        say(`device ${set.serial} has class ${set.class} from its next renewal`);
      }),
    );

  program
    .command('device-class <name>')
    .description('declare or replace a device class (docs/operators/lifecycle.md); flags not given are false')
    .requiredOption('--ttl <duration>', 'operational certificate lifetime, e.g. 24h')
    .requiredOption('--factory-reattest-every <duration>', 'how often the birth key must attest, e.g. 30d')
    .option('--staged-renewal', 'renewals may attest with the current operational key')
    .option('--server-auth', 'operational certificates carry serverAuth too')
    .option('--counter-required', 'attestations must carry a signature counter')
    .option('--on-clone-signal <policy>', 'refuse or suspend', 'refuse')
    .action((name: string, options: { ttl: string; factoryReattestEvery: string; stagedRenewal?: boolean; serverAuth?: boolean; counterRequired?: boolean; onCloneSignal: string }) =>
      io.withContext(async (ctx) => {
        const record = checkDeviceClass(name, {
          ttl: options.ttl, factoryReattestEvery: options.factoryReattestEvery, stagedRenewal: options.stagedRenewal === true,
          serverAuth: options.serverAuth === true, counterRequired: options.counterRequired === true, onCloneSignal: options.onCloneSignal,
        });
        const { created } = await putDeviceClass(ctx.store, ctx.audit, io.actor, record, ctx.clock());
        io.out(`${JSON.stringify(deviceClassView(record))}\n`);
        say(`device class ${name} ${created ? 'declared' : 'saved'}`);
      }),
    );

  program
    .command('model <name>')
    .description('declare a device model, or change it (as PUT /operator/v1/models/<model>)')
    .requiredOption('--hw-type <oid>', "the HardwareModuleName hwType OID of the model's birth certificates")
    .requiredOption('--manufacturer <name>', 'the manufacturer named in the birth certificates')
    .option('--default-class <class>', 'the device class of its devices that have none of their own')
    .action((name: string, options: { hwType: string; manufacturer: string; defaultClass?: string }) =>
      io.withContext(async (ctx) => {
        const declaration = checkModelDeclaration({ hwType: options.hwType, manufacturer: options.manufacturer, ...(options.defaultClass ? { defaultClass: options.defaultClass } : {}) });
        const { created, model } = await declareModel(ctx.store, ctx.audit, io.actor, name, declaration, ctx.clock());
        io.out(`${JSON.stringify(modelView(model))}\n`);
        say(`model ${model.name} ${created ? 'declared' : 'saved'}`);
      }),
    );

  program
    .command('firmware <model> [entries...]')
    .description("set a model's firmware allowlist: entries are <version>=<sha256 hex>; none removes the policy")
    .action((model: string, entries: string[]) =>
      io.withContext(async (ctx) => {
        const allowed = checkAllowlist(entries.map((entry) => {
          const at = entry.lastIndexOf('=');
          return at < 0 ? entry : { version: entry.slice(0, at), digest: entry.slice(at + 1) };
        }));
        await setFirmwareAllowlist(ctx.store, ctx.audit, io.actor, checkModelName(model), allowed, ctx.clock());
        say(allowed.length ? `model ${model} allows ${allowed.map((f) => f.version).join(', ')}` : `model ${model} has no firmware policy`);
      }),
    );

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

  device
    .command('history <serial>')
    .description("print a device's full story: events in order, owners, firmware, then its certificates")
    .option('--json', 'print the same document as GET /audit/v1/devices/<serial>/history')
    .action((serial: string, options: { json?: boolean }) =>
      io.withContext(async (ctx) => {
        const history = await deviceHistory(ctx.store, checkSerial(serial));
        if (!history) throw new CliError(`no device ${serial}`);
        io.out(options.json ? `${JSON.stringify(history, null, 2)}\n` : formatHistory(history));
      }),
    );

  addManufacturerCommands(program, io, cliPrincipal, afterCliRevocation);
  return program;
}

/** Runs one command line to its end: the exit status, with every error as one "devid-ca:" line. */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let status = 0;
  const exit = io.exit;
  const tracked: CliIo = { ...io, exit: (code) => { status = code; exit(code); } };
  try {
    await buildProgram(tracked).parseAsync([...argv], { from: 'user' });
    return status;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end this way too, with exit code 0 and their output already written.
      if (err.exitCode !== 0) io.say(`${err.message.replace(/^error: /, '')} (see devid-ca --help)`);
      return err.exitCode === 0 ? 0 : 1;
    }
    if (err instanceof CliError || EXPECTED.some((kind) => err instanceof kind)) {
      io.say((err as Error).message);
    } else {
      io.say(`unexpected error: ${err instanceof Error ? err.message : String(err)}`);
      if (process.env.DEVID_DEBUG) console.error(err);
    }
    return 1;
  }
}

/** This process: its own context (the data directory lock, the token, the database), its own stdout and stderr. */
export function localIo(): CliIo {
  return {
    out: (text) => process.stdout.write(text),
    stdout: process.stdout,
    ...stderrLines(),
    exit: () => {},
    withContext: async (work, prepareToken = false) => {
      const ctx = await openContext(loadConfig(), createLogger(), { prepareToken });
      try {
        return await work(ctx);
      } finally {
        await ctx.close();
      }
    },
    actor: `cli:${process.getuid?.() ?? 0}`,
  };
}
