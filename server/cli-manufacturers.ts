import { readFileSync, writeFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';
import type { Command } from 'commander';
import { caSlug } from '../ca/issuer.ts';
import { certificatePem } from '../ca/pem.ts';
import { sha256Hex } from '../ca/digest.ts';
import { loadAuditKey } from '../registry/audit-key.ts';
import { checkClaimedDevice, claimDevices, importManifest } from '../registry/claims.ts';
import { checkName, checkSerial, checkText } from '../registry/identifiers.ts';
import { applyManufacturerCrl, fetchCrl } from '../registry/manufacturer-crl.ts';
import {
  SELF, approveManufacturer, pendingDiff, proposalHash, checkManufacturerConfig, checkManufacturerId, manufacturerView, pemCertificates, proposeManufacturer, withdrawManufacturer,
} from '../registry/manufacturers.ts';
import { exportOwnership, importOwnership, verifyOwnershipChain } from '../registry/ownership-statements.ts';
import { RevocationService, type RevocationListener } from '../registry/revocation-service.ts';
import { malformed } from '../errors/domain-error.ts';
import type { CrlSource, ManufacturerRecord } from '../store/manufacturer-store.ts';
import type { CliIo } from './cli.ts';

/** Who acts from a shell: the CLI actor, and the operating-system user as the principal (two-person rules count people). */
export type CliPrincipal = () => { actor: string; principal: string };

function readBytes(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw malformed(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

const readText = (path: string, what: string) => readBytes(path, what).toString('utf8');

/** A manifest file: JSON as the API takes it, or CSV with the header serial,model,birthCertificateSha256[,batch]. */
export function readManifest(path: string): { devices: unknown[] } {
  const text = readText(path, 'the manifest');
  if (text.trimStart().startsWith('{')) {
    try {
      return JSON.parse(text) as { devices: unknown[] };
    } catch (err) {
      throw malformed(`${path} is not JSON: ${(err as Error).message}`);
    }
  }
  const [header, ...rows] = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  const columns = (header ?? '').split(',').map((c) => c.trim());
  const known = ['serial', 'model', 'birthCertificateSha256', 'batch'];
  if (!['serial', 'model', 'birthCertificateSha256'].every((c) => columns.includes(c)) || columns.some((c) => !known.includes(c))) {
    throw malformed(`${path}: a CSV manifest starts with the header serial,model,birthCertificateSha256[,batch]`);
  }
  return {
    devices: rows.map((row, i) => {
      const cells = row.split(',').map((c) => c.trim());
      if (cells.length !== columns.length) throw malformed(`${path} line ${i + 2}: ${cells.length} fields, the header has ${columns.length}`);
      return Object.fromEntries(columns.map((c, j) => [c, cells[j]]).filter(([, v]) => v !== ''));
    }),
  };
}

/** One anchor for a person: subject, fingerprint, validity. */
function anchorLines(b64: string): string {
  const der = Buffer.from(b64, 'base64');
  const c = new x509.X509Certificate(new Uint8Array(der));
  return `    ${c.subject}\n      sha256 ${sha256Hex(der)}\n      valid  ${c.notBefore.toISOString()} .. ${c.notAfter.toISOString()}\n`;
}

const crlSourceText = (crl: CrlSource) => (crl === null ? 'publishes no CRL' : 'url' in crl ? crl.url : `uploaded file (sha256 ${sha256Hex(crl.pem)})`);

/** `manufacturer show` for a person: what the JSON says, without the PEM. */
export function manufacturerSummary(record: ManufacturerRecord, claimed: number): string {
  const lines = [`manufacturer ${record.id}`];
  const approved = record.approvedAt ? ` (approved by ${record.approvedBy} at ${record.approvedAt.toISOString()})` : '';
  lines.push(`  status   ${record.status}${approved}`);
  if (record.withdrawnAt) lines.push(`  withdrawn by ${record.withdrawnBy} at ${record.withdrawnAt.toISOString()}, reason ${record.withdrawReason}`);
  if (record.active) {
    lines.push('  anchors');
    lines.push(...record.active.certificates.map((b64) => anchorLines(b64).trimEnd()));
    const crl = record.crl;
    const state = crl.thisUpdate ? `CRL number ${crl.number ?? '-'} of ${crl.thisUpdate.toISOString()}, next update ${crl.nextUpdate?.toISOString() ?? '-'}` : 'no CRL read yet';
    lines.push(`  CRL      ${crlSourceText(record.active.crl)}${record.active.crl === null ? '' : `: ${state}`}${crl.error ? ` (last read failed: ${crl.error})` : ''}`);
    lines.push(`  models   ${record.active.models.join(', ')}`);
  } else {
    lines.push('  anchors  none in force (never approved)');
  }
  lines.push(`  claimed  ${claimed} device(s)`);
  if (record.retired.length) lines.push(`  retired  ${record.retired.map((b64) => sha256Hex(Buffer.from(b64, 'base64'))).join(', ')}`);
  if (record.proposed) {
    const diff = pendingDiff(record.active, record.proposed);
    const sha = proposalHash(record.proposed);
    lines.push(`  pending change ${sha}, proposed by ${record.proposedBy ?? '-'} at ${record.proposedAt?.toISOString() ?? '-'}`);
    for (const c of diff.certificates.added) lines.push(`    + certificate ${c.subject}  sha256 ${c.sha256}  until ${c.notAfter}`);
    for (const c of diff.certificates.removed) lines.push(`    - certificate ${c.subject}  sha256 ${c.sha256}  until ${c.notAfter}`);
    for (const m of diff.models.added) lines.push(`    + model ${m}`);
    for (const m of diff.models.removed) lines.push(`    - model ${m}`);
    if (diff.crl.changed) lines.push(`    CRL ${crlSourceText(record.active?.crl ?? null)} -> ${crlSourceText(record.proposed.crl)}`);
    lines.push(`    another operator approves it with: devid-ca manufacturer approve ${record.id} --proposal ${sha}`);
  }
  return `${lines.join('\n')}\n`;
}

/** `devid-ca manufacturer|ownership ...`: devices born elsewhere from the command line (docs/operators/manufacturers.md). */
export function addManufacturerCommands(program: Command, io: CliIo, cliPrincipal: CliPrincipal, afterRevocation: RevocationListener): void {
  const say = (line: string) => io.say(line);
  const manufacturer = program.command('manufacturer').description("other manufacturers' birth CAs as trust anchors, their CRLs, manifests and claims (docs/operators/manufacturers.md)");

  manufacturer
    .command('list')
    .description('manufacturers: self (this CA\'s own factory, built in) first, then the registered ones with their status, CRL and claimed devices')
    .action(() =>
      io.withContext(async (ctx) => {
        const claimed = await ctx.store.claims.countByManufacturer();
        io.out(`${SELF}\tactive (built in)\tmodels any\tthis CA's own CRL\tclaimed -\n`);
        for (const m of await ctx.store.manufacturers.all()) {
          const crl = m.active?.crl === null ? 'publishes no CRL' : m.crl.thisUpdate ? `CRL ${m.crl.number ?? '-'} of ${m.crl.thisUpdate.toISOString()}` : 'no CRL read';
          io.out(`${m.id}\t${m.status}${m.proposed ? ' (change pending)' : ''}\tmodels ${(m.active ?? m.proposed)?.models.join(',') ?? '-'}\t${crl}${m.crl.error ? ` (last read failed: ${m.crl.error})` : ''}\tclaimed ${claimed.get(m.id) ?? 0}\n`);
        }
      }),
    );
  manufacturer
    .command('show <id>')
    .description('one manufacturer: status, anchors, CRL, models and any pending change (with --json, as GET /operator/v1/manufacturers/<id>)')
    .option('--json', 'print the document of GET /operator/v1/manufacturers/<id>, PEM included')
    .action((id: string, options: { json?: boolean }) =>
      io.withContext(async (ctx) => {
        if (id === SELF) {
          const anchors = (await ctx.store.caCertificates.all()).filter((c) => (c.role === 'root' || c.role === 'factory') && c.active);
          if (options.json) {
            io.out(`${JSON.stringify({ id: SELF, status: 'active', builtIn: true, certificates: anchors.map((c) => ({ subject: new x509.X509Certificate(new Uint8Array(c.der)).subject, sha256: sha256Hex(c.der), pem: certificatePem(c.der) })) }, null, 2)}\n`);
          } else {
            io.out(`manufacturer ${SELF} (this CA's own factory, built in)\n  status   active\n  anchors\n${anchors.map((c) => anchorLines(c.der.toString('base64'))).join('')}  CRL      this CA's own, published at /crl/${caSlug('factory', anchors.find((c) => c.role === 'factory')?.generation ?? 1)}.crl\n  models   any declared model\n`);
          }
          return;
        }
        const record = await ctx.store.manufacturers.find(checkManufacturerId(id));
        if (!record) throw malformed(`no manufacturer ${id}`);
        const claimed = (await ctx.store.claims.countByManufacturer()).get(id) ?? 0;
        io.out(options.json ? `${JSON.stringify(manufacturerView(record, { claimed }), null, 2)}\n` : manufacturerSummary(record, claimed));
      }),
    );
  manufacturer
    .command('propose <id>')
    .description('register a manufacturer, or change one: pending until another person approves it')
    .requiredOption('--certs <pem>', "a PEM file with the manufacturer's root and any intermediates")
    .requiredOption('--models <models>', 'the models it may vouch for, comma-separated (each declared with "devid-ca model")')
    .option('--crl-url <url>', 'its CRL, polled from this URL')
    .option('--crl-file <pem>', 'its CRL, uploaded from this file (air-gapped sites)')
    .action((id: string, options: { certs: string; models: string; crlUrl?: string; crlFile?: string }) =>
      io.withContext(async (ctx) => {
        if (options.crlUrl && options.crlFile) throw malformed('give --crl-url or --crl-file, not both');
        const certificates = pemCertificates(readText(options.certs, 'the certificates'), '--certs').map((der) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`);
        const crl = options.crlUrl ? { url: options.crlUrl } : options.crlFile ? { pem: readText(options.crlFile, 'the CRL') } : null;
        const config = checkManufacturerConfig({ certificates, models: options.models.split(',').map((m) => m.trim()), crl });
        const { created } = await proposeManufacturer(ctx.store, ctx.audit, cliPrincipal(), checkManufacturerId(id), config, ctx.clock());
        say(`manufacturer ${id} ${created ? 'registered' : 'change proposed'}: pending until another operator approves it`);
      }),
    );
  manufacturer
    .command('approve <id>')
    .description('approve the pending registration or change (another person than the one who proposed it), named by its hash')
    .requiredOption('--proposal <sha256>', 'the hash "devid-ca manufacturer show <id>" prints beside the pending change (pending.sha256 with --json); read the change first: certificates, models and CRL before and after')
    .action((id: string, options: { proposal: string }) =>
      io.withContext(async (ctx) => {
        const approved = await approveManufacturer(ctx.store, ctx.audit, cliPrincipal(), checkManufacturerId(id), ctx.clock(), options.proposal);
        say(`manufacturer ${approved.id} is active`);
      }),
    );
  manufacturer
    .command('crl <id>')
    .description("read the manufacturer's CRL now from its URL, or apply a CRL file")
    .option('--file <pem>', 'a CRL (PEM or DER) to apply')
    .action((id: string, options: { file?: string }) =>
      io.withContext(async (ctx) => {
        const record = await ctx.store.manufacturers.find(checkManufacturerId(id));
        const source = record?.active?.crl;
        let bytes: Buffer;
        if (options.file) bytes = readBytes(options.file, 'the CRL');
        else if (source && 'url' in source) bytes = await fetchCrl(source.url).catch((err: Error) => { throw malformed(`reading ${source.url} failed: ${err.message}`); });
        else throw malformed(`manufacturer ${id} has no CRL URL: give --file`);
        const applied = await applyManufacturerCrl(ctx.store, ctx.audit, afterRevocation, id, bytes, options.file ? 'upload' : 'url', io.actor, ctx.clock());
        say(applied.changed ? `CRL applied: ${applied.entries} entries; ${applied.quarantined.length} device(s) quarantined` : 'the CRL is the one in force');
      }),
    );
  manufacturer
    .command('withdraw <id>')
    .description('manufacturing compromise: trust no more, quarantine its devices and revoke their certificates')
    .requiredOption('--reason <reason>', 'RFC 5280 reason, e.g. keyCompromise')
    .option('--certificate <sha256>', 'withdraw only this intermediate (its SHA-256, as "manufacturer show" lists it)')
    .action((id: string, options: { reason: string; certificate?: string }) =>
      io.withContext(async (ctx) => {
        const { key } = await withdrawManufacturer(ctx.store, ctx.audit, cliPrincipal(), checkManufacturerId(id), { reason: options.reason, ...(options.certificate ? { certificate: options.certificate } : {}) }, ctx.clock());
        const service = new RevocationService(ctx.store, ctx.audit, afterRevocation, ctx.clock);
        const done = await service.resume(key, (progress) => {
          if (!progress.finished) io.progress(`manufacturer ${id}: ${progress.devices} devices, ${progress.certificates} certificates revoked so far`);
        });
        say(`manufacturer ${id}${options.certificate ? ` intermediate ${options.certificate}` : ''} withdrawn: ${done.devices} devices quarantined or already out of service, ${done.certificates} certificates revoked`);
      }),
    );
  manufacturer
    .command('manifest <id>')
    .description("claim the devices of a manufacturer's ownership manifest (JSON or CSV), all or nothing")
    .requiredOption('--file <manifest>', 'the manifest: JSON {"devices": [...]} or CSV serial,model,birthCertificateSha256[,batch]')
    .option('--signature <file>', 'the manufacturer\'s signature over the RFC 8785 JSON of the devices (DER or base64)')
    .option('--signer <pem>', 'the signing certificate (then any intermediates), chaining to the manufacturer')
    .action((id: string, options: { file: string; signature?: string; signer?: string }) =>
      io.withContext(async (ctx) => {
        const manifest = readManifest(options.file);
        const signature = options.signature ? readBytes(options.signature, 'the signature') : undefined;
        const body = {
          devices: manifest.devices,
          ...(signature ? { signature: /^[A-Za-z0-9+/=\s]+$/.test(signature.toString('latin1')) ? signature.toString('latin1').replace(/\s/g, '') : signature.toString('base64') } : {}),
          ...(options.signer ? { signer: readText(options.signer, 'the signer') } : {}),
        };
        const { claimed, manifestSha256 } = await importManifest(ctx.store, ctx.audit, cliPrincipal(), checkManufacturerId(id), body, ctx.clock());
        say(`${claimed} device(s) of ${id} claimed (manifest ${manifestSha256})`);
      }),
    );
  manufacturer
    .command('claim <id> <serial>')
    .description('claim one device of the manufacturer')
    .requiredOption('--model <model>', 'its model')
    .option('--birth-sha256 <hex>', 'the SHA-256 of its birth certificate')
    .option('--birth-cert <pem>', 'its birth certificate (the SHA-256 is taken from it)')
    .option('--batch <batch>', 'its batch (default: the manufacturer id)')
    .action((id: string, serial: string, options: { model: string; birthSha256?: string; birthCert?: string; batch?: string }) =>
      io.withContext(async (ctx) => {
        const hash = options.birthCert ? sha256Hex(pemCertificates(readText(options.birthCert, 'the birth certificate'), '--birth-cert')[0]!) : options.birthSha256;
        const claimed = checkClaimedDevice({ serial: checkSerial(serial), model: options.model, birthCertificateSha256: hash, ...(options.batch ? { batch: options.batch } : {}) }, 'the claim');
        await claimDevices(ctx.store, ctx.audit, cliPrincipal(), { manufacturer: checkManufacturerId(id), devices: [claimed], source: 'claim', manifestSha256: null }, ctx.clock());
        say(`device ${serial} of ${id} claimed (birth certificate ${claimed.birthCertificateSha256})`);
      }),
    );

  const ownership = program.command('ownership').description('ownership statements across companies (docs/operators/manufacturers.md)');
  ownership
    .command('export <serial>')
    .description('hand a device to another company: record the transfer, sign a statement with the audit key, print the chain')
    .requiredOption('--to <owner>', 'the new owner')
    .requiredOption('--evidence <text>', 'what shows the change of hands')
    .option('--out <file>', 'write the chain here instead of stdout')
    .action((serial: string, options: { to: string; evidence: string; out?: string }) =>
      io.withContext(async (ctx) => {
        const { signer, certificate } = await loadAuditKey(ctx.provider, ctx.store);
        const root = (await ctx.store.caCertificates.all()).find((r) => r.role === 'root')!;
        const chain = await exportOwnership(ctx.store, ctx.audit, { signer, chain: [certificate, root.der] }, cliPrincipal(), checkSerial(serial), checkName('to', options.to), checkText('evidence', options.evidence, 2048), ctx.clock());
        const text = `${JSON.stringify(chain, null, 2)}\n`;
        if (options.out) writeFileSync(options.out, text);
        else io.out(text);
        say(`device ${serial} handed to ${options.to}: ${chain.statements.length} statement(s) in the chain`);
      }),
    );
  ownership
    .command('import')
    .description('claim a device handed over by another CA, from its ownership chain')
    .requiredOption('--file <json>', 'the chain {"statements": [...]}')
    .requiredOption('--manufacturer <id>', 'the manufacturer whose anchor vouches for its birth certificate')
    .requiredOption('--model <model>', 'its model')
    .option('--issuer <id>', 'the manufacturer entry of the handing CA (default: --manufacturer)')
    .action((options: { file: string; manufacturer: string; model: string; issuer?: string }) =>
      io.withContext(async (ctx) => {
        const chain = JSON.parse(readText(options.file, 'the chain')) as { statements?: unknown };
        const imported = await importOwnership(ctx.store, ctx.audit, cliPrincipal(), { statements: chain.statements, manufacturer: options.manufacturer, model: options.model, ...(options.issuer ? { issuer: options.issuer } : {}) }, ctx.clock());
        say(`device ${imported.device} claimed, owned by ${imported.owner}`);
      }),
    );
  ownership
    .command('verify')
    .description('check an ownership chain offline, with no database and no HSM, against the CA roots you trust')
    .requiredOption('--file <json>', 'the chain {"statements": [...]}')
    .requiredOption('--trust <pem>', 'a PEM file with the root certificate(s) of the CAs that may sign statements')
    .action((options: { file: string; trust: string }) => {
      let chain: unknown;
      try {
        chain = JSON.parse(readText(options.file, 'the chain'));
      } catch (err) {
        throw malformed(`${options.file}: ${(err as Error).message}`);
      }
      const statements = verifyOwnershipChain(chain, pemCertificates(readText(options.trust, 'the trusted roots'), '--trust'), new Date());
      const last = statements.at(-1)!;
      io.out(`OK: device ${last.device}, birth certificate ${last.birthCertificateSha256}, ${statements.map((s) => s.to).join(' -> ')} (${statements.length} statement(s))\n`);
    });
}
