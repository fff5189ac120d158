import type { Command } from 'commander';
import { malformed } from '../../errors/domain-error.ts';
import { checkSerial } from '../../registry/identifiers.ts';
import { readBytes, readText } from './files.ts';
import { afterCliRevocation, cliPrincipal as principalOf, type CliIo } from './io.ts';

/** A manifest file: JSON as the API takes it, or CSV with the header serial,model,birthCertificateSha256[,batch] (an empty birthCertificateSha256: claimed by serial). */
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

/** `devid-ca manufacturer`: devices born elsewhere (docs/operators/manufacturers.md). */
export function addCommands(program: Command, io: CliIo): void {
  const cliPrincipal = principalOf(io);
  const afterRevocation = afterCliRevocation(io);
  const say = (line: string) => io.say(line);
  const manufacturer = program.command('manufacturer').description("other manufacturers' birth CAs as trust anchors, their CRLs, manifests and claims (docs/operators/manufacturers.md)");

  manufacturer
    .command('list')
    .description('manufacturers: self (this CA\'s own factory, built in) first, then the registered ones with their status, CRL and claimed devices')
    .action(() =>
      io.withContext(async (ctx) => {
        const { SELF } = await import('../../registry/manufacturers/manufacturers.ts');
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
        const { SELF, checkManufacturerId, manufacturerView } = await import('../../registry/manufacturers/manufacturers.ts');
        const { anchorLines, manufacturerSummary } = await import('./manufacturer-summary.ts');
        if (id === SELF) {
          const [x509, { caSlug }, { certificatePem }, { sha256Hex }] = await Promise.all([
            import('@peculiar/x509'), import('../../ca/issuer.ts'), import('../../ca/pem.ts'), import('../../ca/digest.ts'),
          ]);
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
        const { checkManufacturerConfig, checkManufacturerId, pemCertificates, proposeManufacturer } = await import('../../registry/manufacturers/manufacturers.ts');
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
        const { approveManufacturer, checkManufacturerId } = await import('../../registry/manufacturers/manufacturers.ts');
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
        const { applyManufacturerCrl, fetchCrl } = await import('../../registry/manufacturers/manufacturer-crl.ts');
        const { checkManufacturerId } = await import('../../registry/manufacturers/manufacturers.ts');
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
        const { checkManufacturerId, withdrawManufacturer } = await import('../../registry/manufacturers/manufacturers.ts');
        const { RevocationService } = await import('../../registry/lifecycle/revocation-service.ts');
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
        const { importManifest } = await import('../../registry/manufacturers/claims.ts');
        const { checkManufacturerId } = await import('../../registry/manufacturers/manufacturers.ts');
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
    .option('--by-serial', 'claim it by (manufacturer, serial) alone, without a birth certificate: an Android or Apple device (android-key, apple)')
    .option('--batch <batch>', 'its batch (default: the manufacturer id)')
    .action((id: string, serial: string, options: { model: string; birthSha256?: string; birthCert?: string; bySerial?: boolean; batch?: string }) =>
      io.withContext(async (ctx) => {
        const { sha256Hex } = await import('../../ca/digest.ts');
        const { checkClaimedDevice, claimDevices } = await import('../../registry/manufacturers/claims.ts');
        const { checkManufacturerId, pemCertificates } = await import('../../registry/manufacturers/manufacturers.ts');
        // Exactly one way to name the device's identity: a forgotten flag must not claim it by serial.
        if ([options.birthSha256, options.birthCert, options.bySerial].filter((o) => o !== undefined).length !== 1) {
          throw malformed('give exactly one of --birth-sha256, --birth-cert or --by-serial');
        }
        const hash = options.birthCert ? sha256Hex(pemCertificates(readText(options.birthCert, 'the birth certificate'), '--birth-cert')[0]!) : options.birthSha256;
        const claimed = checkClaimedDevice({ serial: checkSerial(serial), model: options.model, birthCertificateSha256: hash, ...(options.batch ? { batch: options.batch } : {}) }, 'the claim');
        await claimDevices(ctx.store, ctx.audit, cliPrincipal(), { manufacturer: checkManufacturerId(id), devices: [claimed], source: 'claim', manifestSha256: null }, ctx.clock());
        say(`device ${serial} of ${id} claimed (${claimed.birthCertificateSha256 === null ? 'by serial' : `birth certificate ${claimed.birthCertificateSha256}`})`);
      }),
    );
}
