import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join, resolve } from 'node:path';

/**
 * Another manufacturer's PKI, built with the `openssl` command line and nothing of ours, so tests can check that
 * devid-ca accepts IEEE 802.1AR birth certificates (IDevIDs) it did not issue. The root and the intermediate each
 * keep an `openssl ca` database (index.txt), so revocation and CRLs are OpenSSL's own, not a simulation.
 */

export interface BirthOptions {
  serial: string; // device serial
  /** When given, the birth certificate carries an RFC 4108 HardwareModuleName in subjectAltName otherName (type-id 1.3.6.1.5.5.7.8.4): SEQUENCE { hwType OID, hwSerialNum OCTET STRING (the serial, ASCII bytes) }. Without it, the serial is only in the subject serialNumber attribute (as Matter DACs do). */
  hwType?: string;
  /** Subject serialNumber attribute (default: present, = serial). */
  subjectSerial?: boolean;
  keyType?: 'P-256' | 'P-384'; // default P-256
}

export interface Birth {
  serial: string;
  keyPem: string; // PKCS#8 PEM private key of the device's factory key
  certPem: string; // the birth certificate
  chainPem: string; // birth certificate followed by the manufacturer intermediate (what a device sends as x5c)
  der: Buffer; // DER of the birth certificate
  sha256: string; // lowercase hex SHA-256 of the DER
  /**
   * Certificate serial number in lowercase hex. The fixture picks 16 random bytes whose first byte is 0x10–0x7f, so
   * this is always exactly 32 digits with no leading zero and no 00 sign byte: it is the same string as index.txt and
   * `openssl x509 -serial` (lowercased), node's X509Certificate.serialNumber (lowercased) and @peculiar/x509's
   * `serialNumber` of the certificate and of its CRL entry.
   */
  serialHex: string;
}

export interface OutsideCa {
  name: string; // e.g. "acme-oem"
  dir: string; // its working directory
  rootPem: string; // self-signed root: CA:TRUE critical, keyUsage keyCertSign,cRLSign critical, SKI
  intermediatePem: string; // issued by root: CA:TRUE,pathlen:0 critical, keyUsage keyCertSign,cRLSign critical, SKI, AKI; CRL Distribution Point = crlUrl when given
  /** Issued by the intermediate: notAfter 99991231235959Z (IEEE 802.1AR "no expiry"), keyUsage digitalSignature critical, basicConstraints CA:FALSE, SKI, AKI, CDP = crlUrl when given, subject "O=<name>, serialNumber=<serial>, CN=<name> Model A1". */
  birth(options: BirthOptions): Birth;
  /** A manifest-signing certificate issued by the intermediate (keyUsage digitalSignature), with its key. */
  signer(): { certPem: string; keyPem: string };
  revoke(birth: Birth): void; // marks it revoked (reason keyCompromise) in the intermediate's database
  crlDer(): Buffer; // a fresh CRL (v2, with CRL number, AKI; nextUpdate about 1 day ahead) signed by the intermediate, DER
  crlPem(): string;
}

// Conservative on purpose: these go into -subj, a config file and a URL path, and a test fixture needs no escaping.
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const OID = /^[0-2](\.\d+)+$/;

/** Runs openssl in the CA's directory with the CA's config, so every relative path (and every file written) stays under it. */
function openssl(dir: string, args: string[]): string {
  const result = spawnSync('openssl', args, { cwd: dir, env: { PATH: process.env.PATH!, OPENSSL_CONF: join(dir, 'openssl.cnf') }, encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (${result.status ?? result.signal}):\n${result.stderr}`);
  return result.stdout;
}

/** Random 16-byte serial, first byte 0x10–0x7f: positive, fixed length, no leading zero (see Birth.serialHex). */
function nextSerial(dir: string, database: string): string {
  const bytes = randomBytes(16);
  bytes[0] = 0x10 + (bytes[0]! % 0x70);
  const hex = bytes.toString('hex');
  // `openssl ca` reads the serial file and then writes serial+1; overwriting it each time gives unguessable serials.
  writeFileSync(join(dir, database, 'serial'), `${hex.toUpperCase()}\n`);
  return hex;
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) [A-Z0-9 ]+-----/g, '').replace(/\s+/g, ''), 'base64');
}

function caSection(database: string, certificate: string): string {
  return `[ ca_${database} ]
database = ${database}/index.txt
new_certs_dir = ${database}/newcerts
serial = ${database}/serial
crlnumber = ${database}/crlnumber
certificate = ${certificate}
private_key = ${database}/key.pem
default_md = sha256
policy = policy_anything
# The same device may be born twice (a re-flash); the database must allow it.
unique_subject = no
# A manufacturer never lets the device choose its own extensions.
copy_extensions = none
# Keep the request's DN order (O, serialNumber, CN) instead of the policy's order.
preserve = yes
default_days = 3650
default_crl_days = 1
crl_extensions = crl_ext
`;
}

function config(crlUrl: string | undefined): string {
  const cdp = crlUrl ? `crlDistributionPoints = URI:${crlUrl}\n` : '';
  return `# The config of an outside manufacturer's CA, written by test/support/outside-ca.ts.
[ req ]
distinguished_name = req_dn
prompt = no
string_mask = utf8only
[ req_dn ]

[ ca ]
default_ca = ca_intermediate

${caSection('root', 'root.pem')}
${caSection('intermediate', 'intermediate.pem')}
[ policy_anything ]
organizationName = optional
serialNumber = optional
commonName = supplied

[ v3_root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[ v3_intermediate ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
${cdp}
[ v3_signer ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always

[ crl_ext ]
authorityKeyIdentifier = keyid:always
`;
}

/** Per-birth extensions: a file of its own because the HardwareModuleName carries this device's serial. */
function birthExtensions(serial: string, hwType: string | undefined, crlUrl: string | undefined): string {
  let text = `[ birth ]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
`;
  if (crlUrl) text += `crlDistributionPoints = URI:${crlUrl}\n`;
  if (hwType) {
    // RFC 4108 HardwareModuleName ::= SEQUENCE { hwType OBJECT IDENTIFIER, hwSerialNum OCTET STRING }
    text += `subjectAltName = otherName:1.3.6.1.5.5.7.8.4;SEQUENCE:hwn
[ hwn ]
hwType = OID:${hwType}
hwSerialNum = FORMAT:ASCII,OCTETSTRING:${serial}
`;
  }
  return text;
}

function newDatabase(dir: string, database: string): void {
  mkdirSync(join(dir, database, 'newcerts'), { recursive: true });
  writeFileSync(join(dir, database, 'index.txt'), '');
  writeFileSync(join(dir, database, 'index.txt.attr'), 'unique_subject = no\n');
  writeFileSync(join(dir, database, 'crlnumber'), '01\n');
}

/** `openssl req -new` with a fresh EC key; OpenSSL 3 writes the unencrypted key as PKCS#8 ("BEGIN PRIVATE KEY"). */
function request(dir: string, keyOut: string, csrOut: string, subject: string, curve: 'P-256' | 'P-384' = 'P-256'): void {
  openssl(dir, ['req', '-new', '-newkey', 'ec', '-pkeyopt', `ec_paramgen_curve:${curve}`, '-nodes', '-keyout', keyOut, '-out', csrOut, '-subj', subject]);
}

/**
 * Makes a manufacturer CA under `dir` (created). crlUrl goes into the intermediate's and births' CDP when given.
 * All EC P-256 with SHA-256; about 40 ms here, then about 20 ms per birth (two openssl processes).
 */
export function outsideCa(name: string, dir: string, options: { crlUrl?: string } = {}): OutsideCa {
  if (!NAME.test(name)) throw new Error(`outsideCa: name must match ${NAME}: ${name}`);
  dir = resolve(dir);
  mkdirSync(dir, { recursive: true });
  if (existsSync(join(dir, 'openssl.cnf'))) throw new Error(`outsideCa: ${dir} already holds a CA`);
  const { crlUrl } = options;
  writeFileSync(join(dir, 'openssl.cnf'), config(crlUrl));
  newDatabase(dir, 'root');
  newDatabase(dir, 'intermediate');
  mkdirSync(join(dir, 'births'));

  openssl(dir, ['req', '-x509', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'root/key.pem', '-out', 'root.pem',
    '-subj', `/O=${name}/CN=${name} Root CA`, '-days', '7300', '-sha256', '-extensions', 'v3_root']);
  request(dir, 'intermediate/key.pem', 'intermediate/req.pem', `/O=${name}/CN=${name} Device CA`);
  nextSerial(dir, 'root');
  openssl(dir, ['ca', '-name', 'ca_root', '-batch', '-notext', '-in', 'intermediate/req.pem', '-out', 'intermediate.pem', '-extensions', 'v3_intermediate']);
  const rootPem = readFileSync(join(dir, 'root.pem'), 'utf8');
  const intermediatePem = readFileSync(join(dir, 'intermediate.pem'), 'utf8');

  const crlPem = (): string => {
    // Each call is a new CRL: thisUpdate now, nextUpdate +1 day, CRL number one higher.
    openssl(dir, ['ca', '-name', 'ca_intermediate', '-gencrl', '-crldays', '1', '-out', 'intermediate/crl.pem']);
    return readFileSync(join(dir, 'intermediate/crl.pem'), 'utf8');
  };

  return {
    name,
    dir,
    rootPem,
    intermediatePem,
    birth({ serial, hwType, subjectSerial = true, keyType = 'P-256' }) {
      if (!NAME.test(serial)) throw new Error(`birth: serial must match ${NAME}: ${serial}`);
      if (hwType !== undefined && !OID.test(hwType)) throw new Error(`birth: hwType must be a dotted OID: ${hwType}`);
      const serialHex = nextSerial(dir, 'intermediate');
      // One directory per certificate (not per device serial): the same device may be born more than once.
      const home = join('births', serialHex);
      mkdirSync(join(dir, home));
      const subject = subjectSerial ? `/O=${name}/serialNumber=${serial}/CN=${name} Model A1` : `/O=${name}/CN=${name} Model A1`;
      request(dir, `${home}/key.pem`, `${home}/req.pem`, subject, keyType);
      writeFileSync(join(dir, home, 'ext.cnf'), birthExtensions(serial, hwType, crlUrl));
      openssl(dir, ['ca', '-name', 'ca_intermediate', '-batch', '-notext', '-in', `${home}/req.pem`, '-out', `${home}/cert.pem`,
        '-enddate', '99991231235959Z', '-extfile', `${home}/ext.cnf`, '-extensions', 'birth']);
      const certPem = readFileSync(join(dir, home, 'cert.pem'), 'utf8');
      const der = pemToDer(certPem);
      return {
        serial,
        keyPem: readFileSync(join(dir, home, 'key.pem'), 'utf8'),
        certPem,
        chainPem: certPem + intermediatePem,
        der,
        sha256: createHash('sha256').update(der).digest('hex'),
        serialHex,
      };
    },
    signer() {
      const home = join('signers', nextSerial(dir, 'intermediate'));
      mkdirSync(join(dir, home), { recursive: true });
      request(dir, `${home}/key.pem`, `${home}/req.pem`, `/O=${name}/CN=${name} Manifest Signer`);
      openssl(dir, ['ca', '-name', 'ca_intermediate', '-batch', '-notext', '-in', `${home}/req.pem`, '-out', `${home}/cert.pem`, '-extensions', 'v3_signer']);
      return { certPem: readFileSync(join(dir, home, 'cert.pem'), 'utf8'), keyPem: readFileSync(join(dir, home, 'key.pem'), 'utf8') };
    },
    revoke(birth) {
      const certFile = join('births', birth.serialHex, 'cert.pem');
      if (!existsSync(join(dir, certFile))) throw new Error(`revoke: ${birth.serialHex} was not born of ${name}`);
      openssl(dir, ['ca', '-name', 'ca_intermediate', '-revoke', certFile, '-crl_reason', 'keyCompromise']);
    },
    crlDer: () => pemToDer(crlPem()),
    crlPem,
  };
}

export interface CrlServer {
  url: string; // http://127.0.0.1:<port>/<name>.crl
  port: number;
  requests: () => number; // GETs of url answered so far (200 or 503)
  close(): Promise<void>;
}

/**
 * Listens first and serves a CA later, which is how a CA gets its own CRL URL in its CDP (the port is the
 * chicken-and-egg: it must be known before the intermediate and births are signed, yet only a listening server
 * owns it without a race):
 *
 *   const server = await crlServer('acme-oem');
 *   const ca = outsideCa('acme-oem', dir, { crlUrl: server.url });
 *   server.serve(ca);
 *
 * Until serve() is called, the URL answers 503.
 */
export async function crlServer(name: string): Promise<CrlServer & { serve(ca: OutsideCa): void }> {
  if (!NAME.test(name)) throw new Error(`crlServer: name must match ${NAME}: ${name}`);
  let served: OutsideCa | undefined;
  let count = 0;
  const path = `/${name}.crl`;
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== path) {
      res.writeHead(404).end();
      return;
    }
    count++;
    if (!served) {
      res.writeHead(503).end();
      return;
    }
    try {
      const der = served.crlDer(); // regenerated on every request, like a CA that signs CRLs on demand
      res.writeHead(200, { 'content-type': 'application/pkix-crl', 'content-length': der.length }).end(der);
    } catch (error) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
    }
  });
  await new Promise<void>((ready, fail) => {
    server.once('error', fail);
    server.listen(0, '127.0.0.1', ready);
  });
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}${path}`,
    port,
    requests: () => count,
    close: () => new Promise<void>((done) => {
      server.closeAllConnections(); // keep-alive clients (fetch) must not hold close() up
      server.close(() => done());
    }),
    serve(ca: OutsideCa) {
      if (ca.name !== name) throw new Error(`crlServer: serving ${name}.crl, not ${ca.name}`);
      served = ca;
    },
  };
}

/**
 * Serves ca.crlDer() (regenerated on every request, Content-Type application/pkix-crl) at
 * http://127.0.0.1:<port>/<name>.crl; counts requests; close() stops it. The port is only known now, so the
 * returned url is in the CA's CDP only if the CA was made with it; for that, use crlServer() first (see there).
 */
export async function serveCrl(ca: OutsideCa): Promise<CrlServer> {
  const server = await crlServer(ca.name);
  server.serve(ca);
  return server;
}

/**
 * A CRL of `entries` revoked serials (keyCompromise) made by `openssl ca`
 * from a written index, as a manufacturer revoking whole batches would
 * publish it; its issuer is a self-signed P-256 CA under `dir`.
 */
export function bulkCrl(dir: string, entries: number, crlNumber = 1): { der: Buffer; certPem: string } {
  mkdirSync(dir, { recursive: true });
  const at = (name: string) => join(dir, name);
  execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', at('k.pem')]);
  execFileSync('openssl', ['req', '-new', '-x509', '-key', at('k.pem'), '-subj', '/CN=bulk-oem', '-days', '30', '-out', at('c.pem')]);
  writeFileSync(at('index.txt'), Array.from({ length: entries }, (_, i) => `R\t301231000000Z\t251123000000Z,keyCompromise\t${(0x10000000 + i).toString(16).toUpperCase()}\tunknown\t/CN=d${i}\n`).join(''));
  writeFileSync(at('crlnumber'), `${crlNumber.toString(16).padStart(2, '0')}\n`);
  writeFileSync(at('openssl.cnf'), `[ca]\ndefault_ca=x\n[x]\ndatabase=${at('index.txt')}\ncrlnumber=${at('crlnumber')}\ndefault_md=sha256\ndefault_crl_days=1\ncertificate=${at('c.pem')}\nprivate_key=${at('k.pem')}\n`);
  execFileSync('openssl', ['ca', '-config', at('openssl.cnf'), '-gencrl', '-out', at('bulk.pem')], { stdio: 'ignore' });
  const der = execFileSync('openssl', ['crl', '-in', at('bulk.pem'), '-outform', 'der'], { maxBuffer: 64 * 1024 * 1024 });
  return { der, certPem: readFileSync(at('c.pem'), 'utf8') };
}
