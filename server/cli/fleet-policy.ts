import type { Command } from 'commander';
import { checkDeviceClass, deviceClassView, putDeviceClass } from '../../registry/catalogue/device-classes.ts';
import { checkAllowlist, checkCutoff, setFirmwareAllowlist, setLegacyCutoff } from '../../registry/catalogue/firmware-policy.ts';
import { checkModelName } from '../../registry/identifiers.ts';
import { checkModelDeclaration, declareModel, modelView } from '../../registry/catalogue/models.ts';
import { cliPrincipal, type CliIo } from './io.ts';

/** `devid-ca device-class`, `model` and `firmware`: what the fleet's devices may be and run. */
export function addCommands(program: Command, io: CliIo): void {
  const say = (line: string) => io.say(line);
  const principal = cliPrincipal(io);
  program
    .command('device-class <name>')
    .description('declare or replace a device class (docs/operators/lifecycle.md); flags not given are false')
    .requiredOption('--ttl <duration>', 'operational certificate lifetime, e.g. 24h')
    .requiredOption('--factory-reattest-every <duration>', 'how often the birth key must attest, e.g. 30d')
    .option('--staged-renewal', 'renewals may attest with the current operational key')
    .option('--server-auth', 'operational certificates carry serverAuth too')
    .option('--counter-required', 'attestations must carry a signature counter')
    .option('--on-clone-signal <policy>', 'refuse or suspend', 'refuse')
    .option('--attestation-formats <fmts>', 'comma-separated attestation formats (fmt) its devices may attest with: devid, tpm, android-key, apple', 'devid')
    .option('--est', 'its devices may enroll with EST (RFC 7030) as well as ACME')
    .option('--on-withdrawn-firmware <policy>', 'a device attesting on a withdrawn firmware release: refuse or suspend', 'refuse')
    .option('--gateway-models <models>', 'comma-separated models: its devices are EST gateways for the declared devices of these models (docs/operators/gateways.md)')
    .action((name: string, options: { ttl: string; factoryReattestEvery: string; stagedRenewal?: boolean; serverAuth?: boolean; counterRequired?: boolean; onCloneSignal: string; attestationFormats: string; est?: boolean; onWithdrawnFirmware: string; gatewayModels?: string }) =>
      io.withContext(async (ctx) => {
        const record = checkDeviceClass(name, {
          ttl: options.ttl, factoryReattestEvery: options.factoryReattestEvery, stagedRenewal: options.stagedRenewal === true,
          serverAuth: options.serverAuth === true, counterRequired: options.counterRequired === true, onCloneSignal: options.onCloneSignal,
          attestationFormats: options.attestationFormats.split(',').map((fmt) => fmt.trim()), est: options.est === true,
          onWithdrawnFirmware: options.onWithdrawnFirmware,
          ...(options.gatewayModels !== undefined ? { gateway: { models: options.gatewayModels.split(',').map((m) => m.trim()) } } : {}),
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
        await setFirmwareAllowlist(ctx.store, ctx.audit, principal(), checkModelName(model), allowed, ctx.clock());
        say(allowed.length ? `model ${model} allows ${allowed.map((f) => f.version).join(', ')} (legacy releases)` : `model ${model} has no firmware policy`);
      }),
    );

  program
    .command('firmware-cutoff <model> <until>')
    .description("the date (RFC 3339) from which a model's legacy releases (its former allowlist) are refused and its allowlist is gone; final once passed")
    .action((model: string, until: string) =>
      io.withContext(async (ctx) => {
        const set = await setLegacyCutoff(ctx.store, ctx.audit, principal(), checkModelName(model), checkCutoff(until), ctx.clock());
        io.out(`${JSON.stringify({ model: set.model, until: set.until.toISOString() })}\n`);
        say(`model ${model}: legacy releases accepted until ${set.until.toISOString()}`);
      }),
    );
}
