import type { Command } from 'commander';
import { certificatePem } from '../../ca/pem.ts';
import { CliError, type CliIo } from './io.ts';

/** `devid-ca ca`: the root ceremonies (the operational rollover, the firmware intermediate) and the firmware signers. */
export function addCommands(program: Command, io: CliIo): void {
  const say = (line: string) => io.say(line);
  const ca = program.command('ca').description('CA ceremonies');
  ca
    .command('rollover <role>')
    .description('root ceremony: a new key and intermediate for the operational CA; the old one keeps serving its certificates (restart serve)')
    .action((role: string) =>
      io.withContext(async (ctx) => {
        const { rolloverOperationalCa } = await import('../ceremonies.ts');
        if (role !== 'operational') throw new CliError('only the operational intermediate is rolled over: devid-ca ca rollover operational');
        const { previous, next } = await rolloverOperationalCa(ctx, io.actor);
        say(`retired ${previous.slug} CA serial ${previous.record.serial}; it keeps signing the CRL and OCSP of its certificates`);
        say(`new ${next.slug} CA serial ${next.record.serial} key ${next.record.keyLabel} (CKA_ID ${next.record.keyId.toString('hex')}); restart serve to issue from it`);
        io.out(`${next.certificate.toString('pem')}\n`);
      }),
    );
  ca
    .command('create <role>')
    .description('root ceremony: the firmware intermediate (devid-firmware) for an existing installation (restart serve to publish it)')
    .action((role: string) =>
      io.withContext(async (ctx) => {
        const { createFirmwareCa } = await import('../firmware-ceremonies.ts');
        if (role !== 'firmware') throw new CliError('only the firmware intermediate is created after init: devid-ca ca create firmware');
        const firmware = await createFirmwareCa(ctx, io.actor);
        say(`new ${firmware.slug} CA serial ${firmware.record.serial} key ${firmware.record.keyLabel} (CKA_ID ${firmware.record.keyId.toString('hex')}); restart serve to publish it`);
        io.out(`${firmware.certificate.toString('pem')}\n`);
      }),
    );
  ca
    .command('firmware-signer <model>')
    .description('a model\'s firmware signer: a key in the token and its codeSigning certificate from the firmware intermediate')
    .action((model: string) =>
      io.withContext(async (ctx) => {
        const { createModelFirmwareSigner } = await import('../firmware-ceremonies.ts');
        const signer = await createModelFirmwareSigner(ctx, model, io.actor);
        say(`firmware signer for ${signer.model}: certificate serial ${signer.certificateSerial} key ${signer.keyLabel} (CKA_ID ${signer.keyId.toString('hex')})`);
        io.out(certificatePem(signer.certificateDer));
      }),
    );
}
