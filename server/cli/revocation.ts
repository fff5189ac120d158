import type { Command } from 'commander';
import { checkBatch, checkCertificateSerial, checkSerial } from '../../registry/identifiers.ts';
import { REVOCATION_REASON_NAMES, checkReason } from '../../registry/lifecycle/revocation.ts';
import { afterCliRevocation, type CliIo } from './io.ts';

/** `devid-ca revoke` (a certificate, a device, a batch) and `devid-ca crl publish`. */
export function addCommands(program: Command, io: CliIo): void {
  const say = (line: string) => io.say(line);
  const afterRevocation = afterCliRevocation(io);
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
          const { RevocationService } = await import('../../registry/lifecycle/revocation-service.ts');
          const reason = checkReason(options.reason);
          const service = new RevocationService(ctx.store, ctx.audit, afterRevocation, ctx.clock);
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
        const { loadHierarchy } = await import('../../ca/hierarchy.ts');
        const { CrlPublisher } = await import('../../publish/crl-publisher.ts');
        const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, ctx.store, { allowOfflineRoot: !options.root });
        const { loadIdentity } = await import('../identity.ts');
        const publisher = new CrlPublisher(ctx.store, ctx.clock, ctx.config.crl, (await loadIdentity(ctx.store))?.httpBaseUrl);
        const issuers = options.root ? [hierarchy.root] : hierarchy.issuers.filter((issuer) => issuer.role !== 'root' && issuer.online);
        for (const issuer of issuers) {
          for (const published of await publisher.publishAll(issuer, { force: true })) {
            const which = published.record.shard === -1 ? issuer.slug : `${issuer.slug} shard ${published.record.shard}`;
            say(`${which}: CRL number ${published.record.number} with ${published.record.entries} entries, next update ${published.record.nextUpdate.toISOString()}`);
          }
        }
        await io.publication?.crlRound();
      }),
    );
}
