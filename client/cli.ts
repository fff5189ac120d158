import 'reflect-metadata'; // @peculiar/x509 (through device.ts) resolves its algorithms through tsyringe
import { createHash, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { EstError, estEnroll, ownAttestation, type EstCredentials } from './est-client.ts';
import { request } from 'node:https';
import { join, resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AcmeClient, AcmeError } from './acme-client.ts';
import { Device, FILES } from './device.ts';
import { writeAtomically } from './files.ts';
import { fileFactoryKey, pkcs11FactoryKey, type FactoryKey } from './factory-key.ts';
import { hex, SRK_HANDLE, Tpm, TpmToolError } from './tpm.ts';
import { TpmResponseError } from './tpm-certify.ts';
import { createAttestationKey, tpmFactoryKey, TpmKeys, type TpmHandles } from './tpm-device.ts';
import { certificateDer, fetchFirmwareIntermediate, firmwareAnchor, verifyRelease } from './firmware-verify.ts';
import { checkCertificate } from '../pki/certificate-key.ts';

/** How a device finds its CA and its factory key, kept in <dir>/device.json. */
interface DeviceConfig {
  serial: string;
  /** The CA's root certificate (PEM file) that the device trusts for HTTPS. */
  ca: string;
  acme?: string;
  /** The EST base URL, https://host:port/.well-known/est/<device class> (docs/device-makers/est.md). */
  est?: string;
  /**
   * The firmware the device reports in every attestation: a digest (hex) as
   * given, or an image file hashed again at each enrollment and renewal, so
   * the report follows what is installed. Kept from the last accepted one.
   */
  firmware?: { version: string; digest: string } | { version: string; file: string };
  factoryKey: { kind: 'file'; path: string } | { kind: 'pkcs11'; module: string; token: string; label: string } | { kind: 'tpm'; handle: string };
  /** A device whose keys live in its TPM (init --tpm): the persistent handles of its keys; the factory key is then the attestation key. */
  tpm?: { parent: string; slots: [string, string]; key?: string };
}

/** The TPM handles of a device initialised with --tpm. */
function tpmHandles(config: DeviceConfig): TpmHandles | undefined {
  if (config.factoryKey.kind !== 'tpm') return undefined;
  if (!config.tpm) throw new CliError('device.json names a TPM attestation key but no "tpm" handles: run "devid-device init --tpm" again');
  const parse = (h: string) => Number.parseInt(h, 16);
  return {
    parent: parse(config.tpm.parent), ak: parse(config.factoryKey.handle), slots: [parse(config.tpm.slots[0]), parse(config.tpm.slots[1])],
    ...(config.tpm.key ? { key: parse(config.tpm.key) } : {}),
  };
}

/** A persistent handle given on the command line (TPM 2.0 Part 2, 7.5: 0x81000000 to 0x817fffff). */
function persistentHandle(value: string, option: string): number {
  const handle = /^0x[0-9a-fA-F]{8}$/.test(value) ? Number.parseInt(value, 16) : Number.NaN;
  if (!(handle >= 0x81000000 && handle <= 0x817ffffd)) throw new CliError(`${option} ${value} is no persistent TPM handle: give one from 0x81000000 to 0x817ffffd, e.g. 0x81000002`);
  return handle;
}

/** The TPM through tpm2-tools, or why it cannot be used. */
function openTpm(): Tpm {
  const missing = Tpm.missingTool();
  if (missing) throw new CliError(`${missing} is not installed: a device with --tpm needs tpm2-tools (Debian: apt-get install tpm2-tools)`);
  return new Tpm();
}

/** The tpm format has no place for a firmware report (no authData): a TPM device given one is told so. */
function tpmFirmware(config: DeviceConfig, firmware: Firmware | undefined): Firmware | undefined {
  if (firmware && config.factoryKey.kind === 'tpm') throw new CliError('the tpm attestation format carries no firmware report: a TPM device enrolls without --firmware-* (its firmware lineage stays empty)');
  return firmware;
}

/** --tpm on enroll or renew asserts the device was initialised with it. */
function checkTpmFlag(config: DeviceConfig, dir: string, tpm: boolean | undefined): void {
  if (tpm && config.factoryKey.kind !== 'tpm') throw new CliError(`${join(dir, 'device.json')} is not a TPM device: run "devid-device --dir ${dir} init --tpm ..." to make one`);
}

const say = (line: string) => process.stderr.write(`devid-device: ${line}\n`);
class CliError extends Error {}

/** The server this command talks to, and the option that names it: what an error that reaches no answer is about. */
let talkingTo: { url: string; option: string; ca: string } | undefined;

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET', 'EPIPE']);
const NOT_TLS = new Set(['EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER', 'ERR_SSL_PACKET_LENGTH_TOO_LONG', 'ERR_SSL_HTTP_REQUEST', 'HPE_INVALID_CONSTANT']);
const UNTRUSTED = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_SIGNATURE_FAILURE', 'CERT_UNTRUSTED', 'CERT_REJECTED', 'CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'INVALID_CA', 'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** An HTTP problem document (RFC 9457) from the CA, as one line: its title, detail and type. */
function problemLine(status: number, problem: { type?: string; title?: string; detail?: string } | undefined, fallback = ''): string {
  if (!problem || (!problem.detail && !problem.title)) return `the CA answered HTTP ${status}${fallback ? `: ${fallback.slice(0, 200)}` : ' with no problem document'}`;
  const type = problem.type?.replace(/^urn:ietf:params:acme:error:/, '').replace(/^.*[/:]/, '');
  return `the CA refused (${status}${problem.title ? ` ${problem.title}` : ''}${type && type !== 'about:blank' ? `, ${type}` : ''}): ${problem.detail ?? ''}`;
}

/** What went wrong, and what to do about it, for the errors a newcomer meets. */
function explain(err: unknown): string {
  if (err instanceof CliError) return err.message;
  if (err instanceof AcmeError) return problemLine(err.status, err.problem);
  if (err instanceof TpmToolError || err instanceof TpmResponseError) {
    return `the TPM failed: ${err.message} (the tools reach it through TPM2TOOLS_TCTI${process.env.TPM2TOOLS_TCTI ? `=${process.env.TPM2TOOLS_TCTI}` : ', unset: their default'})`;
  }
  if (err instanceof EstError) return err.message;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const message = err instanceof Error ? err.message : String(err);
  const server = talkingTo && URL.canParse(talkingTo.url) ? new URL(talkingTo.url).origin : undefined;
  if (code && server && UNREACHABLE.has(code)) {
    return `cannot reach ${server} (${code}): is "devid-ca serve" running there? check ${talkingTo!.option}`;
  }
  if (code && server && NOT_TLS.has(code)) {
    return `${server} does not answer HTTPS (${code}): is that the plain-HTTP port? devid-device talks to the HTTPS listener (DEVID_LISTEN, 127.0.0.1:8443 by default); check ${talkingTo!.option}`;
  }
  if (code && server && UNTRUSTED.has(code)) {
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `${server} presented a certificate for another name (${message}): use the CA's public host name (DEVID_PUBLIC_HOST) in ${talkingTo!.option}`;
    return `${server} presented a certificate this device does not trust (${code}): ${talkingTo!.ca} must be that CA's root certificate (served at http://<host>:<http port>/ca/root.crt); give the right one to "devid-device init --ca"`;
  }
  if (code === 'ENOENT' || code === 'EACCES') return `cannot read ${(err as NodeJS.ErrnoException).path ?? 'a file'}: ${code === 'ENOENT' ? 'it does not exist' : 'permission denied'}`;
  return `unexpected error: ${message}`;
}

/** The CA's URLs are HTTPS: a plain-HTTP one, or none at all, is refused before anything is sent. */
function httpsUrl(value: string, option: string, example: string): string {
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'https:') throw new CliError(`${option} ${value} is no https:// URL: give the CA's HTTPS listener, e.g. ${example}`);
  return value;
}

/** A device that has no birth certificate yet cannot attest with it: say what to run. */
function needBirth(dir: string, staged = false): void {
  if (existsSync(join(dir, FILES.birth)) || (staged && existsSync(join(dir, FILES.certificate)))) return;
  throw new CliError(`no birth certificate in ${dir}: run "devid-device --dir ${dir} birth --factory <CA base URL> --model <model> --batch <batch>" first (a device born elsewhere: "devid-device init --birth <file>")`);
}

/** The CA root the device trusts, as PEM: a DER file (what /ca/root.crt serves) is converted, anything else refused. */
function readCa(path: string, named: string): string {
  if (!existsSync(path)) throw new CliError(`${named} ${path} does not exist: give the CA's root certificate (PEM or DER; served at http://<host>:<http port>/ca/root.crt)`);
  const bytes = readFileSync(path);
  if (bytes.includes('-----BEGIN CERTIFICATE-----')) return bytes.toString('utf8');
  try {
    return new X509Certificate(bytes).toString();
  } catch {
    throw new CliError(`${named} ${path} is no certificate (PEM or DER): give the CA's root certificate (served at http://<host>:<http port>/ca/root.crt)`);
  }
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

type Firmware = NonNullable<DeviceConfig['firmware']>;

interface FirmwareOptions {
  firmwareVersion?: string;
  firmwareDigest?: string;
  firmwareFile?: string;
}

/** The firmware named on the command line (a digest, or an image file to hash at each attestation), checked as the CA checks it; undefined when none is. */
function firmwareFrom(options: FirmwareOptions): Firmware | undefined {
  const { firmwareVersion: version, firmwareDigest: digest, firmwareFile: file } = options;
  if (version === undefined && digest === undefined && file === undefined) return undefined;
  if (digest !== undefined && file !== undefined) throw new CliError('give --firmware-digest or --firmware-file, not both');
  if (version === undefined) throw new CliError('--firmware-digest and --firmware-file need --firmware-version');
  if (digest === undefined && file === undefined) throw new CliError('--firmware-version needs --firmware-digest <hex> or --firmware-file <image>');
  if (version.length > 64 || /[\u0000-\u001f\u007f]/.test(version) || version === '') throw new CliError('--firmware-version must be 1 to 64 printable characters');
  if (file !== undefined) {
    if (!existsSync(file)) throw new CliError(`--firmware-file ${file} does not exist: give the installed firmware image`);
    return { version, file: resolve(file) };
  }
  if (!/^(?:[0-9a-fA-F]{2}){32,64}$/.test(digest!)) throw new CliError('--firmware-digest must be the hex of a 32- to 64-byte digest (sha256sum prints one)');
  return { version, digest: digest!.toLowerCase() };
}

/** What an attestation reports: the firmware given now, else the one kept in device.json; an image file is hashed now, as it is installed. */
function reporting(firmware: Firmware | undefined): { firmware?: { version: string; digest: Buffer } } {
  if (!firmware) return {};
  if ('digest' in firmware) return { firmware: { version: firmware.version, digest: Buffer.from(firmware.digest, 'hex') } };
  if (!existsSync(firmware.file)) throw new CliError(`the firmware image ${firmware.file} (kept in device.json) does not exist: give the installed one with --firmware-version and --firmware-file`);
  return { firmware: { version: firmware.version, digest: createHash('sha256').update(readFileSync(firmware.file)).digest() } };
}

/** Keeps the firmware the CA just accepted, so that later renewals report the same (an image file: hashed again then). */
function keepFirmware(dir: string, config: DeviceConfig, firmware: Firmware | undefined): void {
  if (!firmware || JSON.stringify(firmware) === JSON.stringify(config.firmware)) return;
  config.firmware = firmware;
  writeAtomically(join(dir, 'device.json'), `${JSON.stringify(config, null, 2)}\n`);
}

async function openFactoryKey(config: DeviceConfig, create = false): Promise<FactoryKey> {
  if (config.factoryKey.kind === 'file') return fileFactoryKey(config.factoryKey.path);
  if (config.factoryKey.kind === 'tpm') return tpmFactoryKey(openTpm(), Number.parseInt(config.factoryKey.handle, 16), config.serial);
  const { module, token, label } = config.factoryKey;
  return pkcs11FactoryKey({ modulePath: module, tokenLabel: token, label, pin: secretFromEnvOrFile('DEVID_DEVICE_PIN', process.env.DEVID_DEVICE_PIN_FILE) }, create);
}

async function withDevice<T>(dir: string, work: (device: Device, config: DeviceConfig) => Promise<T>): Promise<T> {
  const config = loadConfig(dir);
  if (!config.acme) throw new CliError('no ACME directory URL: give --acme to "devid-device init"');
  talkingTo = { url: config.acme, option: `the ACME directory URL in ${join(dir, 'device.json')} ("devid-device init --acme")`, ca: config.ca };
  const handles = tpmHandles(config);
  // One TPM for the attestation key and the operational keys; closing the factory key closes it.
  const tpm = handles ? openTpm() : undefined;
  const factoryKey = tpm && handles ? tpmFactoryKey(tpm, handles.ak, config.serial) : await openFactoryKey(config);
  try {
    const acme = new AcmeClient(config.acme, Device.accountKey(dir), readCa(config.ca, `the CA root certificate in ${join(dir, 'device.json')}`));
    const hardware = tpm && handles ? new TpmKeys(tpm, handles, (handle) => {
      config.tpm!.key = hex(handle);
      writeAtomically(join(dir, 'device.json'), `${JSON.stringify(config, null, 2)}\n`);
    }) : undefined;
    return await work(new Device(config.serial, dir, factoryKey, acme, new URL(config.acme).hostname, hardware), config);
  } finally {
    await factoryKey.close();
  }
}

interface FactoryAnswer {
  status: number;
  text: string;
  json: Record<string, unknown> | undefined;
}

/** A POST to the factory API with the line's token. */
function factoryPost(url: string, token: string, ca: string, body: unknown): Promise<FactoryAnswer> {
  return new Promise((done, fail) => {
    const req = request(url, { method: 'POST', ca, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        let json: Record<string, unknown> | undefined;
        try {
          json = JSON.parse(text) as Record<string, unknown>;
        } catch {
          json = undefined;
        }
        done({ status: res.statusCode!, text, json });
      });
    });
    req.on('error', fail);
    req.end(JSON.stringify(body));
  });
}

const program = new Command('devid-device')
  .description('Reference device for devid-ca: a factory key (a file, a PKCS#11 token, or a TPM with --tpm), a birth certificate, ACME device-attest-01 enrollment and renewal')
  .option('--dir <dir>', 'the device state directory', './device')
  .exitOverride()
  .configureOutput({ outputError: () => {} });
const dirOf = () => resolve((program.opts() as { dir: string }).dir);

program
  .command('init')
  .description('create the device: its state directory and its factory key (in a file, or in a PKCS#11 token)')
  .requiredOption('--serial <serial>', 'the device serial')
  .requiredOption('--ca <file>', "the CA's root certificate (PEM or DER: http://<host>:<http port>/ca/root.crt)")
  .option('--acme <url>', 'the ACME directory URL, e.g. https://ca.example.com:8443/acme/directory')
  .option('--est <url>', 'the EST base URL, e.g. https://ca.example.com:8443/.well-known/est/<device class>')
  .option('--pkcs11-module <path>', 'keep the factory key in this PKCS#11 module (PIN from DEVID_DEVICE_PIN or DEVID_DEVICE_PIN_FILE)')
  .option('--pkcs11-token <label>', 'token label', 'device')
  .option('--pkcs11-label <label>', 'key label', 'factory-key')
  .option('--factory-key <file>', 'a device born elsewhere: the factory key its manufacturer made (PKCS#8 PEM), used where it is')
  .option('--birth <file>', 'a device born elsewhere: its birth certificate, then the manufacturer intermediates (PEM), sent as x5c')
  .option('--tpm', 'keep every key in the TPM (tpm2-tools, TCTI from TPM2TOOLS_TCTI): the attestation key is the factory key, and the device attests in the tpm format')
  .option('--tpm-parent <handle>', 'the storage primary key (created there unless it is)', hex(SRK_HANDLE))
  .option('--tpm-ak <handle>', 'the attestation key (created there unless it is)', '0x81000002')
  .option('--tpm-keys <handle,handle>', 'the two handles operational keys take turns in', '0x81000003,0x81000004')
  .action(async (options: {
    serial: string; ca: string; acme?: string; est?: string; pkcs11Module?: string; pkcs11Token: string; pkcs11Label: string; factoryKey?: string; birth?: string;
    tpm?: boolean; tpmParent: string; tpmAk: string; tpmKeys: string;
  }) => {
    const dir = dirOf();
    readCa(options.ca, '--ca');
    if (options.acme) httpsUrl(options.acme, '--acme', 'https://ca.example.com:8443/acme/directory');
    if (options.est) httpsUrl(options.est, '--est', 'https://ca.example.com:8443/.well-known/est/<device class>');
    if (options.factoryKey && !existsSync(options.factoryKey)) throw new CliError(`--factory-key ${options.factoryKey} does not exist`);
    if (options.tpm && (options.pkcs11Module || options.factoryKey || options.birth)) throw new CliError('--tpm keeps the factory key in the TPM: it goes with neither --pkcs11-module, --factory-key nor --birth');
    let tpm: { handles: TpmHandles; config: NonNullable<DeviceConfig['tpm']> } | undefined;
    if (options.tpm) {
      const slots = options.tpmKeys.split(',');
      if (slots.length !== 2) throw new CliError(`--tpm-keys ${options.tpmKeys} must be two handles, e.g. 0x81000003,0x81000004`);
      const handles: TpmHandles = {
        parent: persistentHandle(options.tpmParent, '--tpm-parent'), ak: persistentHandle(options.tpmAk, '--tpm-ak'),
        slots: [persistentHandle(slots[0]!, '--tpm-keys'), persistentHandle(slots[1]!, '--tpm-keys')],
      };
      if (new Set([handles.parent, handles.ak, ...handles.slots]).size !== 4) throw new CliError('--tpm-parent, --tpm-ak and the two --tpm-keys must be four different handles');
      tpm = { handles, config: { parent: hex(handles.parent), slots: [hex(handles.slots[0]), hex(handles.slots[1])] } };
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const config: DeviceConfig = {
      serial: options.serial, ca: resolve(options.ca), ...(options.acme ? { acme: options.acme } : {}), ...(options.est ? { est: options.est } : {}),
      factoryKey: tpm
        ? { kind: 'tpm', handle: hex(tpm.handles.ak) }
        : options.pkcs11Module
          ? { kind: 'pkcs11', module: options.pkcs11Module, token: options.pkcs11Token, label: options.pkcs11Label }
          : { kind: 'file', path: options.factoryKey ? resolve(options.factoryKey) : join(dir, 'factory-key.pem') },
      ...(tpm ? { tpm: tpm.config } : {}),
    };
    if (tpm) {
      const device = openTpm();
      try {
        createAttestationKey(device, tpm.handles);
      } catch (err) {
        throw new CliError(`the TPM could not make the attestation key: ${(err as Error).message}`);
      } finally {
        device.close();
      }
    }
    if (options.birth) writeAtomically(join(dir, 'birth.pem'), `${readFileSync(options.birth, 'utf8').trim()}\n`);
    if (config.factoryKey.kind === 'file' && !existsSync(config.factoryKey.path)) {
      writeAtomically(config.factoryKey.path, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), 0o600);
    }
    const factoryKey = await openFactoryKey(config, true);
    try {
      // A line with its own tools posts this request and puts the birth certificate it gets in birth.pem; "birth" does both.
      if (tpm) writeAtomically(join(dir, 'birth-request.pem'), await factoryKey.csr());
    } finally {
      await factoryKey.close();
    }
    writeAtomically(join(dir, 'device.json'), `${JSON.stringify(config, null, 2)}\n`);
    say(`device ${options.serial} initialised in ${dir} (factory key: ${config.factoryKey.kind === 'tpm' ? `the TPM attestation key at ${config.factoryKey.handle}` : config.factoryKey.kind})`);
  });

program
  .command('birth')
  .description('ask a factory line for the birth certificate (factory token from DEVID_FACTORY_TOKEN or --token-file)')
  .requiredOption('--factory <url>', 'the CA base URL, e.g. https://ca.example.com:8443')
  .requiredOption('--model <model>', 'the device model')
  .requiredOption('--batch <batch>', 'the manufacturing batch')
  .option('--token-file <file>', 'a file holding the factory token')
  .option('--ek-certificate <file>', "a TPM device: the TPM's endorsement key certificate (DER or PEM); the CA then proves the attestation key lives in that TPM (credential activation) before it issues")
  .option('--tpm-manufacturer <id>', 'with --ek-certificate: the registered manufacturer whose CA issued it')
  .option('--tpm-ek <handle>', 'with --ek-certificate: the persistent handle of the endorsement key (tpm2_createek makes it there unless it is)', '0x81010001')
  .action(async (options: { factory: string; model: string; batch: string; tokenFile?: string; ekCertificate?: string; tpmManufacturer?: string; tpmEk: string }) => {
    const dir = dirOf();
    const config = loadConfig(dir);
    httpsUrl(options.factory, '--factory', 'https://ca.example.com:8443');
    if ((options.ekCertificate === undefined) !== (options.tpmManufacturer === undefined)) throw new CliError('--ek-certificate and --tpm-manufacturer go together');
    if (options.ekCertificate && config.factoryKey.kind !== 'tpm') throw new CliError('--ek-certificate is for a device made with "init --tpm"');
    const token = secretFromEnvOrFile('DEVID_FACTORY_TOKEN', options.tokenFile);
    talkingTo = { url: options.factory, option: '--factory', ca: config.ca };
    const ca = readCa(config.ca, `the CA root certificate in ${join(dir, 'device.json')}`);
    const post = async (path: string, body: unknown): Promise<FactoryAnswer> => {
      const answer = await factoryPost(`${options.factory.replace(/\/+$/, '')}${path}`, token, ca, body);
      if (answer.status >= 400) throw new CliError(`the factory API at ${options.factory} ${problemLine(answer.status, answer.json, answer.text).replace(/^the CA /, '')}`);
      return answer;
    };
    const factoryKey = await openFactoryKey(config);
    try {
      let tpmActivation: { id: string; credential: string } | undefined;
      if (options.ekCertificate && config.factoryKey.kind === 'tpm') {
        const ekCertificate = new X509Certificate(readFileSync(options.ekCertificate)).raw;
        const ak = Number.parseInt(config.factoryKey.handle, 16);
        const ek = persistentHandle(options.tpmEk, '--tpm-ek');
        const tpm = openTpm();
        try {
          tpm.ensureEndorsementKey(ek);
          const challenge = (await post('/factory/v1/tpm-challenges', {
            serial: config.serial, model: options.model, manufacturer: options.tpmManufacturer, ekCertificate: ekCertificate.toString('base64'), akPublic: tpm.publicArea(ak).toString('base64'),
          })).json as { id: string; credentialBlob: string; encryptedSecret: string };
          const credential = tpm.activateCredential(ak, ek, Buffer.from(challenge.credentialBlob, 'base64'), Buffer.from(challenge.encryptedSecret, 'base64'));
          tpmActivation = { id: challenge.id, credential: credential.toString('base64') };
        } finally {
          tpm.close();
        }
      }
      const answer = await post('/factory/v1/birth-certificates', { serial: config.serial, model: options.model, batch: options.batch, csr: await factoryKey.csr(), ...(tpmActivation ? { tpmActivation } : {}) });
      if (typeof answer.json?.certificate !== 'string') throw new CliError(`${options.factory} answered ${answer.status} without a birth certificate: is it the devid-ca base URL (https://host:port, no path)? check --factory`);
      writeAtomically(join(dir, 'birth.pem'), `${String(answer.json.certificate).trim()}\n`);
      say(`birth certificate ${String(answer.json.certificateSerial)} written to ${join(dir, 'birth.pem')}`);
    } finally {
      await factoryKey.close();
    }
  });

program
  .command('enroll')
  .description('enroll over ACME: attest with the factory key, get an operational certificate for a new key')
  .option('--firmware-version <version>', 'report this firmware version (kept in device.json for renewals)')
  .option('--firmware-digest <hex>', "the firmware image's digest (SHA-256 hex, 32 to 64 bytes)")
  .option('--firmware-file <image>', 'report the SHA-256 of this firmware image, hashed again at every enrollment and renewal (its path is kept in device.json)')
  .option('--tpm', 'the device was made with "init --tpm" (the mode is kept in device.json: this only checks it)')
  .option('--est', 'enroll over EST (RFC 7030) instead: TLS with the birth certificate, the CSR bound to the session')
  .action(async (options: FirmwareOptions & { tpm?: boolean; est?: boolean }) => {
    if (options.est) return estDeviceEnroll(dirOf(), 'simpleenroll', firmwareFrom(options));
    return withDevice(dirOf(), async (device, config) => {
      checkTpmFlag(config, device.dir, options.tpm);
      const firmware = tpmFirmware(config, firmwareFrom(options)) ?? config.firmware;
      needBirth(device.dir);
      const { certificate } = await device.enroll(reporting(firmware));
      keepFirmware(device.dir, config, firmware);
      say(`operational certificate ${certificate.serialNumber} valid until ${certificate.notAfter.toISOString()} in ${device.path('certificate')}`);
    });
  });

program
  .command('renew')
  .description('renew when renewalInfo says so (naming the certificate it replaces); --daemon keeps doing it')
  .option('--daemon', 'sleep until each renewal window, for ever')
  .option('--now', 'renew now, whatever the window says')
  .option('--staged', "attest with the current operational key (the device class must allow staged renewal)")
  .option('--firmware-version <version>', 'report this firmware version from now on (default: the one in device.json)')
  .option('--firmware-digest <hex>', "the firmware image's digest (SHA-256 hex, 32 to 64 bytes)")
  .option('--firmware-file <image>', 'report the SHA-256 of this firmware image, hashed again at every enrollment and renewal (its path is kept in device.json)')
  .option('--tpm', 'the device was made with "init --tpm" (the mode is kept in device.json: this only checks it)')
  .option('--est', 'renew now over EST (simplereenroll with the current operational certificate)')
  .action(async (options: { daemon?: boolean; now?: boolean; staged?: boolean; tpm?: boolean; est?: boolean } & FirmwareOptions) => {
    if (options.est) return estDeviceEnroll(dirOf(), 'simplereenroll', firmwareFrom(options));
    return withDevice(dirOf(), async (device, config) => {
      checkTpmFlag(config, device.dir, options.tpm);
      if (options.staged && config.factoryKey.kind === 'tpm') throw new CliError('--staged attests with the operational key: a TPM device attests with its attestation key (renew without --staged)');
      const firmware = tpmFirmware(config, firmwareFrom(options)) ?? config.firmware;
      const enrollOptions = { staged: options.staged === true, ...reporting(firmware) };
      needBirth(device.dir, options.staged === true);
      for (;;) {
        if (options.now) {
          const { certificate } = await device.enroll(enrollOptions);
          keepFirmware(device.dir, config, firmware);
          say(`renewed: certificate ${certificate.serialNumber} valid until ${certificate.notAfter.toISOString()}`);
          return;
        }
        const outcome = await device.renewIfDue(new Date(), enrollOptions);
        if ('renewed' in outcome) {
          keepFirmware(device.dir, config, firmware);
          say(`renewed: certificate ${outcome.renewed.certificate.serialNumber} valid until ${outcome.renewed.certificate.notAfter.toISOString()}`);
        } else say(`not due: next check ${outcome.next.toISOString()}`);
        if (!options.daemon) return;
        const wait = 'next' in outcome ? Math.max(1000, outcome.next.getTime() - Date.now()) : 1000;
        await new Promise((done) => setTimeout(done, Math.min(wait, 2 ** 31 - 1)));
      }
    });
  });

/** The EST base URL of the device, checked; `label` puts another device class in its place. */
function estBase(dir: string, config: DeviceConfig, label?: string): URL {
  if (!config.est) throw new CliError(`no EST URL: give --est https://<host>:<port>/.well-known/est/<device class> to "devid-device init" (${join(dir, 'device.json')})`);
  const base = new URL(config.est);
  if (label !== undefined) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/.test(label)) throw new CliError('--label must be a device class name');
    base.pathname = `/.well-known/est/${label}`;
  }
  talkingTo = { url: base.href, option: `the EST URL in ${join(dir, 'device.json')} ("devid-device init --est")`, ca: config.ca };
  return base;
}

/** The device's factory key as PEM: TLS needs the key itself, so EST enrollment by the birth certificate takes a file key. */
function fileKeyPem(config: DeviceConfig): string {
  if (config.factoryKey.kind !== 'file') throw new CliError('EST enrollment with the birth certificate needs the factory key in a file: this client cannot hand a PKCS#11 key to TLS (use ACME, or renew --est with the operational key)');
  return readFileSync(config.factoryKey.path, 'utf8');
}

/** The next attestation counter of the device (kept in its sign-count file, as for ACME). */
function nextSignCount(dir: string): number {
  const path = join(dir, FILES.signCount);
  const next = (existsSync(path) ? Number(readFileSync(path, 'utf8').trim()) || 0 : 0) + 1;
  writeAtomically(path, `${next}\n`);
  return next;
}

/**
 * enroll --est / renew --est (docs/device-makers/est.md): TLS 1.3 with the
 * birth certificate (enroll) or the operational one (renew), a new key,
 * the CSR bound to the session; with firmware, the device's attestation
 * over the binding in the CSR (id-aa-attestation).
 */
async function estDeviceEnroll(dir: string, operation: 'simpleenroll' | 'simplereenroll', given: Firmware | undefined): Promise<void> {
  const config = loadConfig(dir);
  const base = estBase(dir, config);
  const ca = readCa(config.ca, `the CA root certificate in ${join(dir, 'device.json')}`);
  needBirth(dir);
  const firmware = given ?? config.firmware;
  const birthPem = readFileSync(join(dir, FILES.birth), 'utf8');
  const client: EstCredentials = operation === 'simpleenroll'
    ? { keyPem: fileKeyPem(config), certPem: birthPem }
    : existsSync(join(dir, FILES.certificate))
      ? { keyPem: readFileSync(join(dir, FILES.key), 'utf8'), certPem: readFileSync(join(dir, FILES.certificate), 'utf8') }
      : (() => { throw new CliError(`no operational certificate in ${dir}: run "devid-device enroll --est" first`); })();
  const attest = firmware
    ? async (binding: string, spki: Buffer) => ownAttestation({
      factoryKeyPem: fileKeyPem(config), birthPem, binding, rpId: base.hostname, spki, signCount: nextSignCount(dir),
      firmware: reporting(firmware).firmware!,
    })
    : undefined;
  const issued = await estEnroll(base, ca, client, config.serial, operation, { bind: true, ...(attest ? { attest } : {}) });
  writeAtomically(join(dir, FILES.key), issued.keyPem, 0o600);
  writeAtomically(join(dir, FILES.certificate), issued.chainPem);
  keepFirmware(dir, config, firmware);
  say(`${operation === 'simpleenroll' ? 'enrolled' : 'renewed'} over EST: certificate ${issued.certificate.serialNumber.toLowerCase()} valid until ${new Date(issued.certificate.validTo).toISOString()} in ${join(dir, FILES.certificate)}`);
}

const gateway = program.command('gateway').description('a gateway (RFC 7030 3.7): enroll the constrained devices behind it over EST with its own operational certificate');
gateway
  .command('enroll <list>')
  .description('enroll (or re-enroll) each device serial of the list file (one a line, # comments): a key made here for each, its certificate and key written to <out>/<serial>/')
  .option('--out <dir>', 'where the devices\' files go (default: <dir>/devices)')
  .option('--label <class>', 'the devices\' device class, in place of the one in the EST URL')
  .action(async (list: string, options: { out?: string; label?: string }) => {
    const dir = dirOf();
    const config = loadConfig(dir);
    const base = estBase(dir, config, options.label);
    const ca = readCa(config.ca, `the CA root certificate in ${join(dir, 'device.json')}`);
    if (!existsSync(join(dir, FILES.certificate))) throw new CliError(`no operational certificate in ${dir}: the gateway enrolls first ("devid-device enroll --est" or "enroll")`);
    const own: EstCredentials = { keyPem: readFileSync(join(dir, FILES.key), 'utf8'), certPem: readFileSync(join(dir, FILES.certificate), 'utf8') };
    const serials = readFileSync(list, 'utf8').split(/\r?\n/).map((l) => l.replace(/#.*/, '').trim()).filter((l) => l !== '');
    const bad = serials.find((s) => !/^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/.test(s));
    if (bad !== undefined) throw new CliError(`${list}: "${bad.slice(0, 80)}" is no device serial`);
    const out = resolve(options.out ?? join(dir, 'devices'));
    let failed = 0;
    for (const serial of serials) {
      const target = join(out, serial);
      mkdirSync(target, { recursive: true, mode: 0o700 });
      const operation = existsSync(join(target, FILES.certificate)) ? 'simplereenroll' : 'simpleenroll';
      try {
        const issued = await estEnroll(base, ca, own, serial, operation, { bind: false });
        writeAtomically(join(target, FILES.key), issued.keyPem, 0o600);
        writeAtomically(join(target, FILES.certificate), issued.chainPem);
        say(`${serial}: certificate ${issued.certificate.serialNumber.toLowerCase()} valid until ${new Date(issued.certificate.validTo).toISOString()} in ${target}`);
      } catch (err) {
        failed += 1;
        say(`${serial}: ${explain(err)}`);
      }
    }
    if (failed > 0) throw new CliError(`${failed} of ${serials.length} device(s) not enrolled`);
  });

const firmwareCommand = program.command('firmware').description('signed firmware releases: check one before installing it');

firmwareCommand
  .command('verify <envelope> <image>')
  .description('verify a release\'s signed SUIT envelope and its image before installing: the COSE signature, the signer\'s chain to the firmware intermediate and its codeSigning, the manifest digest, the image\'s digest and size; prints the release on stdout')
  .option('--ca <file>', 'the firmware intermediate to anchor at (PEM or DER), as provisioned; default: fetched from --ca-url and checked against the device\'s root')
  .option('--ca-url <url>', 'the CA\'s plain-HTTP base URL (where /ca/firmware.crt and the CRLs are served), e.g. http://ca.example.com')
  .option('--root <file>', 'the CA root that must have signed the fetched firmware intermediate (default: the one in device.json)')
  .option('--min-sequence <n>', 'the sequence number this device runs: a release below it is a rollback')
  .action(async (envelopePath: string, imagePath: string, options: { ca?: string; caUrl?: string; root?: string; minSequence?: string }) => {
    if (options.ca && options.caUrl) throw new CliError('give --ca or --ca-url, not both');
    if (!options.ca && !options.caUrl) throw new CliError('give the firmware intermediate: --ca <file>, or --ca-url <the CA\'s plain-HTTP base URL> to fetch it');
    const minSequence = options.minSequence === undefined ? undefined : Number(options.minSequence);
    if (minSequence !== undefined && (!/^\d{1,16}$/.test(options.minSequence!) || !Number.isSafeInteger(minSequence))) throw new CliError('--min-sequence must be an unsigned integer');
    const envelope = readFileSync(envelopePath);
    const image = readFileSync(imagePath);
    let anchor;
    try {
      if (options.ca) anchor = firmwareAnchor(certificateDer(readFileSync(options.ca)));
      else {
        const rootFile = options.root ?? loadConfig(dirOf()).ca;
        const root = checkCertificate(certificateDer(Buffer.from(readCa(rootFile, options.root ? '--root' : `the CA root certificate in ${join(dirOf(), 'device.json')}`))));
        talkingTo = { url: options.caUrl!, option: '--ca-url', ca: rootFile };
        anchor = firmwareAnchor(certificateDer(await fetchFirmwareIntermediate(options.caUrl!)), root);
      }
    } catch (err) {
      if (err instanceof CliError || (err as NodeJS.ErrnoException).code) throw err;
      throw new CliError(`the firmware intermediate is refused: ${err instanceof Error ? err.message : String(err)}`);
    }
    let release;
    try {
      release = verifyRelease(envelope, image, [anchor], minSequence);
    } catch (err) {
      throw new CliError(`REFUSED ${envelopePath}: ${err instanceof Error ? err.message : String(err)}`);
    }
    process.stdout.write(`${JSON.stringify({
      sequence: release.sequence, manifestSha256: release.manifestSha256, imageSha256: release.imageSha256.toString('hex'), imageSize: release.imageSize,
      vendorId: release.vendorId.toString('hex'), classId: release.classId.toString('hex'), signer: release.signer.cert.subject.replace(/\n/g, ', '), signerSerial: release.signer.cert.serialNumber.toLowerCase(),
    })}\n`);
    say(`verified: sequence ${release.sequence}, manifest ${release.manifestSha256}, signed by ${release.signer.cert.subject.replace(/\n/g, ', ')} under ${anchor.cert.subject.replace(/\n/g, ', ')}`);
  });

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
    say(explain(err));
    if (process.env.DEVID_DEBUG) console.error(err);
    process.exitCode = 1;
  }
}
