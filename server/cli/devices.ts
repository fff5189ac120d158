import type { Command } from 'commander';
import { checkName, checkSerial, checkText } from '../../registry/identifiers.ts';
import { CliError, afterCliRevocation, cliPrincipal, type CliIo } from './io.ts';

/** `devid-ca device`: one device's lifecycle (owner, retirement, suspension, class) and its history. */
export function addCommands(program: Command, io: CliIo): void {
  const say = (line: string) => io.say(line);
  const principal = cliPrincipal(io);
  const afterRevocation = afterCliRevocation(io);
  const device = program.command('device').description('device registry and lifecycle (docs/operators/lifecycle.md); each action is audited with actor cli:<uid>');
  device
    .command('transfer <serial>')
    .description('record a new owner (the chain of owners is kept)')
    .requiredOption('--to <owner>', 'the new owner')
    .requiredOption('--evidence <text>', 'what shows the change of hands (contract, order, ticket)')
    .action((serial: string, options: { to: string; evidence: string }) =>
      io.withContext(async (ctx) => {
        const { transferDevice } = await import('../../registry/lifecycle/lifecycle.ts');
        const moved = await transferDevice(ctx.store, ctx.audit, principal(), checkSerial(serial), checkName('to', options.to), checkText('evidence', options.evidence, 2048, { multiline: true }), ctx.clock());
        say(`device ${moved.serial}: ${moved.from ?? '(no owner)'} -> ${moved.to}`);
      }),
    );
  device
    .command('declare <serial>')
    .description('declare a device that gateways enroll (a constrained device without a factory key), or add gateways to a device (docs/operators/gateways.md)')
    .requiredOption('--model <model>', 'its model')
    .requiredOption('--gateways <serials>', 'comma-separated serials of the gateways allowed to enroll it')
    .option('--class <class>', 'its device class (else its model\'s)')
    .action((serial: string, options: { model: string; gateways: string; class?: string }) =>
      io.withContext(async (ctx) => {
        const { checkDeclaration, declareConstrainedDevice } = await import('../../registry/catalogue/constrained-devices.ts');
        const declaration = checkDeclaration({ serial, model: options.model, gateways: options.gateways.split(',').map((g) => g.trim()), ...(options.class !== undefined ? { class: options.class } : {}) });
        const { created, gateways } = await declareConstrainedDevice(ctx.store, ctx.audit, io.actor, declaration, ctx.clock());
        io.out(`${JSON.stringify({ serial, model: declaration.model, gateways })}\n`);
        say(`device ${serial} ${created ? 'declared' : 'updated'}; gateways ${gateways.join(', ')}`);
      }),
    );
  device
    .command('decommission <serial>')
    .description('retire a device: revoke every certificate, refuse enrollment until it is reprovisioned')
    .requiredOption('--reason <text>', 'why')
    .action((serial: string, options: { reason: string }) =>
      io.withContext(async (ctx) => {
        const { decommissionDevice } = await import('../../registry/lifecycle/lifecycle.ts');
        const { revoked } = await decommissionDevice(ctx.store, ctx.audit, afterRevocation, io.actor, checkSerial(serial), checkText('reason', options.reason, 1024), ctx.clock());
        say(`device ${serial} decommissioned; ${revoked.length} certificate(s) revoked`);
      }),
    );
  device
    .command('reset-counter <serial>')
    .description("set the device's attestation counter (check 4) back to 0, after its TPM was cleared")
    .requiredOption('--reason <text>', 'why the counter went back')
    .action((serial: string, options: { reason: string }) =>
      io.withContext(async (ctx) => {
        const { resetDeviceCounter } = await import('../../registry/lifecycle/counter-reset.ts');
        const reset = await resetDeviceCounter(ctx.store, ctx.audit, io.actor, checkSerial(serial), checkText('reason', options.reason, 1024), ctx.clock());
        say(`device ${reset.serial}: counter ${reset.previous} -> 0; its next attestation sets it again`);
      }),
    );
  for (const transition of ['suspend', 'resume'] as const) {
    device
      .command(`${transition} <serial>`)
      .description(transition === 'suspend' ? 'stop enrollment and renewal of an active device' : 'let a suspended device enroll and renew again')
      .action((serial: string) =>
        io.withContext(async (ctx) => {
          const { suspendOrResume } = await import('../../registry/lifecycle/lifecycle.ts');
          const moved = await suspendOrResume(ctx.store, ctx.audit, io.actor, checkSerial(serial), transition, ctx.clock(), afterRevocation);
          say(`device ${moved.serial} is ${moved.state}`);
        }),
      );
  }
  device
    .command('class <serial> <class>')
    .description("set the device's class (from its next renewal)")
    .action((serial: string, className: string) =>
      io.withContext(async (ctx) => {
        const { assignDeviceClass } = await import('../../registry/catalogue/device-classes.ts');
        const set = await assignDeviceClass(ctx.store, ctx.audit, io.actor, checkSerial(serial), checkName('class', className), ctx.clock());
        say(`device ${set.serial} has class ${set.class} from its next renewal`);
      }),
    );

  device
    .command('history <serial>')
    .description("print a device's full story: events in order, owners, firmware, then its certificates")
    .option('--json', 'print the same document as GET /audit/v1/devices/<serial>/history')
    .action((serial: string, options: { json?: boolean }) =>
      io.withContext(async (ctx) => {
        const { deviceHistory, formatHistory } = await import('../../registry/reports/device-history.ts');
        const history = await deviceHistory(ctx.store, checkSerial(serial));
        if (!history) throw new CliError(`no device ${serial}`);
        io.out(options.json ? `${JSON.stringify(history, null, 2)}\n` : formatHistory(history));
      }),
    );
}
