import { generateKeyPairSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import type { Device } from './device.ts';
import type { FactoryKey } from './factory-key.ts';
import { writeAtomically } from './files.ts';

/** How a device finds its CA and its factory key, kept in <dir>/device.json. */
interface DeviceConfig {
  serial: string;
  /** The CA's root certificate (PEM file) that the device trusts for HTTPS. */
  ca: string;
  acme?: string;
  factoryKey: { kind: 'file'; path: string } | { kind: 'pkcs11'; module: string; token: string; label: string };
}

const say = (line: string) => process.stderr.write(`devid-device: ${line}\n`);
class CliError extends Error {}

/*
 * The certificate and ACME code loads only for the commands that use it (--help needs none of it),
 * after reflect-metadata: @peculiar/x509 resolves its algorithms through tsyringe.
 */
async function factoryKeyCode() {
  await import('reflect-metadata');
  return import('./factory-key.ts');
}
async function enrollmentCode() {
  await import('reflect-metadata');
  const [{ Device }, { AcmeClient }] = await Promise.all([import('./device.ts'), import('./acme-client.ts')]);
  return { Device, AcmeClient };
}

function secretFromEnvOrFile(name: string, file: string | undefined): string {
  if (file) return readFileSync(file, 'utf8').trim();
  const value = process.env[name]?.trim();
  if (!value) throw new CliError(`set ${name}, or give its file`);
  return value;
}

function loadConfig(dir: string): DeviceConfig {
  const path = join(dir, 'device.json');
  if (!existsSync(path)) throw new CliError(`${path} does not exist: run "devid-device init" first`);
  return JSON.parse(readFileSync(path, 'utf8')) as DeviceConfig;
}

async function openFactoryKey(config: DeviceConfig, create = false): Promise<FactoryKey> {
  const { fileFactoryKey, pkcs11FactoryKey } = await factoryKeyCode();
  if (config.factoryKey.kind === 'file') return fileFactoryKey(config.factoryKey.path);
  const { module, token, label } = config.factoryKey;
  return pkcs11FactoryKey({ modulePath: module, tokenLabel: token, label, pin: secretFromEnvOrFile('DEVID_DEVICE_PIN', process.env.DEVID_DEVICE_PIN_FILE) }, create);
}

async function withDevice<T>(dir: string, work: (device: Device, config: DeviceConfig) => Promise<T>): Promise<T> {
  const config = loadConfig(dir);
  if (!config.acme) throw new CliError('no ACME directory URL: give --acme to "devid-device init"');
  const { AcmeClient, Device } = await enrollmentCode();
  const factoryKey = await openFactoryKey(config);
  try {
    const acme = new AcmeClient(config.acme, Device.accountKey(dir), readFileSync(config.ca, 'utf8'));
    return await work(new Device(config.serial, dir, factoryKey, acme, new URL(config.acme).hostname), config);
  } finally {
    await factoryKey.close();
  }
}

const program = new Command('devid-device')
  .description('Reference device for devid-ca: a factory key, a birth certificate, ACME device-attest-01 enrollment and renewal')
  .option('--dir <dir>', 'the device state directory', './device')
  .exitOverride()
  .configureOutput({ outputError: () => {} });
const dirOf = () => resolve((program.opts() as { dir: string }).dir);

program
  .command('init')
  .description('create the device: its state directory and its factory key (in a file, or in a PKCS#11 token)')
  .requiredOption('--serial <serial>', 'the device serial')
  .requiredOption('--ca <file>', "the CA's root certificate (PEM)")
  .option('--acme <url>', 'the ACME directory URL, e.g. https://ca.example.com:8443/acme/directory')
  .option('--pkcs11-module <path>', 'keep the factory key in this PKCS#11 module (PIN from DEVID_DEVICE_PIN or DEVID_DEVICE_PIN_FILE)')
  .option('--pkcs11-token <label>', 'token label', 'device')
  .option('--pkcs11-label <label>', 'key label', 'factory-key')
  .option('--factory-key <file>', 'a device born elsewhere: the factory key its manufacturer made (PKCS#8 PEM), used where it is')
  .option('--birth <file>', 'a device born elsewhere: its birth certificate, then the manufacturer intermediates (PEM), sent as x5c')
  .action(async (options: { serial: string; ca: string; acme?: string; pkcs11Module?: string; pkcs11Token: string; pkcs11Label: string; factoryKey?: string; birth?: string }) => {
    const dir = dirOf();
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const config: DeviceConfig = {
      serial: options.serial, ca: resolve(options.ca), ...(options.acme ? { acme: options.acme } : {}),
      factoryKey: options.pkcs11Module
        ? { kind: 'pkcs11', module: options.pkcs11Module, token: options.pkcs11Token, label: options.pkcs11Label }
        : { kind: 'file', path: options.factoryKey ? resolve(options.factoryKey) : join(dir, 'factory-key.pem') },
    };
    if (options.factoryKey && !existsSync(options.factoryKey)) throw new CliError(`${options.factoryKey} does not exist`);
    if (options.birth) writeAtomically(join(dir, 'birth.pem'), `${readFileSync(options.birth, 'utf8').trim()}\n`);
    if (config.factoryKey.kind === 'file' && !existsSync(config.factoryKey.path)) {
      writeAtomically(config.factoryKey.path, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
    }
    await (await openFactoryKey(config, true)).close();
    writeAtomically(join(dir, 'device.json'), `${JSON.stringify(config, null, 2)}\n`);
    say(`device ${options.serial} initialised in ${dir} (factory key: ${config.factoryKey.kind})`);
  });

program
  .command('birth')
  .description('ask a factory line for the birth certificate (factory token from DEVID_FACTORY_TOKEN or --token-file)')
  .requiredOption('--factory <url>', 'the CA base URL, e.g. https://ca.example.com:8443')
  .requiredOption('--model <model>', 'the device model')
  .requiredOption('--batch <batch>', 'the manufacturing batch')
  .option('--token-file <file>', 'a file holding the factory token')
  .action(async (options: { factory: string; model: string; batch: string; tokenFile?: string }) => {
    const dir = dirOf();
    const config = loadConfig(dir);
    const token = secretFromEnvOrFile('DEVID_FACTORY_TOKEN', options.tokenFile);
    const factoryKey = await openFactoryKey(config);
    try {
      const body = JSON.stringify({ serial: config.serial, model: options.model, batch: options.batch, csr: await factoryKey.csr() });
      const answer = await new Promise<{ status: number; json: Record<string, unknown> }>((done, fail) => {
        const req = request(`${options.factory.replace(/\/+$/, '')}/factory/v1/birth-certificates`, {
          method: 'POST', ca: readFileSync(config.ca, 'utf8'), headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => done({ status: res.statusCode!, json: JSON.parse(text) as Record<string, unknown> }));
        });
        req.on('error', fail);
        req.end(body);
      });
      if (answer.status >= 400) throw new CliError(`the factory API refused: ${answer.status} ${String(answer.json.detail)}`);
      writeAtomically(join(dir, 'birth.pem'), `${String(answer.json.certificate).trim()}\n`);
      say(`birth certificate ${String(answer.json.certificateSerial)} written to ${join(dir, 'birth.pem')}`);
    } finally {
      await factoryKey.close();
    }
  });

program
  .command('enroll')
  .description('enroll over ACME: attest with the factory key, get an operational certificate for a new key')
  .action(() =>
    withDevice(dirOf(), async (device) => {
      const { certificate } = await device.enroll();
      say(`operational certificate ${certificate.serialNumber} valid until ${certificate.notAfter.toISOString()} in ${device.path('certificate')}`);
    }),
  );

program
  .command('renew')
  .description('renew when renewalInfo says so (naming the certificate it replaces); --daemon keeps doing it')
  .option('--daemon', 'sleep until each renewal window, for ever')
  .option('--now', 'renew now, whatever the window says')
  .option('--staged', "attest with the current operational key (the device class must allow staged renewal)")
  .action((options: { daemon?: boolean; now?: boolean; staged?: boolean }) =>
    withDevice(dirOf(), async (device) => {
      for (;;) {
        if (options.now) {
          const { certificate } = await device.enroll({ staged: options.staged === true });
          say(`renewed: certificate ${certificate.serialNumber} valid until ${certificate.notAfter.toISOString()}`);
          return;
        }
        const outcome = await device.renewIfDue(new Date(), { staged: options.staged === true });
        if ('renewed' in outcome) say(`renewed: certificate ${outcome.renewed.certificate.serialNumber} valid until ${outcome.renewed.certificate.notAfter.toISOString()}`);
        else say(`not due: next check ${outcome.next.toISOString()}`);
        if (!options.daemon) return;
        const wait = 'next' in outcome ? Math.max(1000, outcome.next.getTime() - Date.now()) : 1000;
        await new Promise((done) => setTimeout(done, Math.min(wait, 2 ** 31 - 1)));
      }
    }),
  );

/** RFC 5280 reason codes a device may give for its own certificate. */
const REASONS: Record<string, number> = { unspecified: 0, keyCompromise: 1, affiliationChanged: 3, superseded: 4, cessationOfOperation: 5 };

program
  .command('revoke')
  .description("revoke the current operational certificate over ACME (a birth certificate is revoked by an operator only)")
  .option('--reason <reason>', `one of ${Object.keys(REASONS).join(', ')}`, 'unspecified')
  .action((options: { reason: string }) =>
    withDevice(dirOf(), async (device) => {
      const reason = REASONS[options.reason];
      if (reason === undefined) throw new CliError(`--reason must be one of ${Object.keys(REASONS).join(', ')}`);
      const revoked = await device.revoke(reason);
      say(`certificate ${revoked.serialNumber} revoked (${options.reason}); "renew" gets a new one`);
    }),
  );

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    if (err.exitCode !== 0) say(err.message.replace(/^error: /, ''));
    process.exitCode = err.exitCode === 0 ? 0 : 1;
  } else {
    // An ACME refusal was thrown by the ACME code, so loading it here costs nothing.
    const refused = err instanceof CliError || (err instanceof Error && err instanceof (await import('./acme-client.ts')).AcmeError);
    say(refused ? (err as Error).message : `unexpected error: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 1;
  }
}
