import { generateKeyPairSync, X509Certificate as NodeCertificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { Hierarchy } from '../ca/hierarchy.ts';
import type { IssuanceService } from '../ca/issuance.ts';
import { DAY_MS, serverProfile } from '../ca/profiles.ts';
import { ConfigError, type PublicIdentity, type TlsFiles } from './config.ts';
import type { Context } from './context.ts';

/**
 * The CA's own HTTPS key and certificate. Node's TLS stack needs the key in
 * memory, so unlike the CA keys it is a software key, kept in the data
 * directory with mode 0600; it is only a server identity and signs nothing.
 */
export interface ServerCredentials {
  key: string;
  /** The server certificate followed by the operational intermediate. */
  cert: string;
  notAfter: Date;
}

/** Renew once a third of the 90-day lifetime is left. */
const RENEW_BEFORE_MS = 30 * DAY_MS;

function paths(dataDir: string) {
  const dir = join(dataDir, 'tls');
  return { dir, key: join(dir, 'server-key.pem'), cert: join(dir, 'server-cert.pem') };
}

function writeAtomically(path: string, content: string, mode: number): void {
  writeFileSync(`${path}.tmp`, content, { mode });
  renameSync(`${path}.tmp`, path);
}

/** The stored credentials when still good for this host and intermediate, else undefined. */
function usable(dataDir: string, hierarchy: Hierarchy, host: string, now: Date): ServerCredentials | undefined {
  const p = paths(dataDir);
  if (!existsSync(p.key) || !existsSync(p.cert)) return undefined;
  const key = readFileSync(p.key, 'utf8');
  const cert = readFileSync(p.cert, 'utf8');
  const leaf = new NodeCertificate(cert);
  const intermediate = new NodeCertificate(hierarchy.operational.record.der);
  const notAfter = new Date(leaf.validTo);
  const fresh = notAfter.getTime() - now.getTime() > RENEW_BEFORE_MS;
  const matches = leaf.checkPrivateKey(createPrivateKey(key)) && leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey);
  const names = leaf.checkHost(host) !== undefined || leaf.checkIP(host) !== undefined;
  return fresh && matches && names ? { key, cert, notAfter } : undefined;
}

/** Returns usable server credentials, issuing (and auditing) a new certificate when needed. */
export async function ensureServerCredentials(ctx: Context, issuance: IssuanceService, hierarchy: Hierarchy, identity: PublicIdentity): Promise<ServerCredentials> {
  const host = identity.publicHost;
  const now = ctx.clock();
  const existing = usable(ctx.config.dataDir, hierarchy, host, now);
  if (existing) return existing;

  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const issuer = hierarchy.operational;
  const issued = await ctx.audit.record(ctx.store, async (tx) => {
    const profile = serverProfile({ issuer, spki, baseUrl: identity.httpBaseUrl, now }, host);
    const result = await issuance.issue(tx, { issuer, profile, deviceSerial: null, predecessorSha256: null });
    return {
      value: result,
      events: [{ action: 'certificate.issued', actor: 'system', data: { kind: 'server', serial: result.record.serial, issuer: issuer.slug, host, notAfter: result.record.notAfter.toISOString() } }],
    };
  });
  const p = paths(ctx.config.dataDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  const key = privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
  const cert = [issued.pem, issuer.certificate.toString('pem')].join('\n') + '\n';
  writeAtomically(p.key, key, 0o600);
  writeAtomically(p.cert, cert, 0o644);
  ctx.logger.info({ serial: issued.record.serial, host, notAfter: issued.record.notAfter }, 'issued server certificate');
  return { key, cert, notAfter: issued.record.notAfter };
}

function readTlsFile(path: string, variable: string): string {
  if (!existsSync(path)) throw new ConfigError(`${variable}=${path} does not exist: give the PEM file, or unset ${variable} to serve devid-ca's own certificate`);
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`${variable}=${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): let the server's user read it`);
  }
}

/**
 * DEVID_TLS_CERT and DEVID_TLS_KEY, read as they are and checked: a PEM
 * certificate (then its intermediates) and the private key that matches it.
 * A certificate that does not name the public host, or is not valid now, is
 * only warned about: it is the operator's to replace.
 */
export function operatorCredentials(files: TlsFiles, host: string, now: Date, warn: (message: string) => void): ServerCredentials {
  const cert = readTlsFile(files.cert, 'DEVID_TLS_CERT');
  const key = readTlsFile(files.key, 'DEVID_TLS_KEY');
  let leaf: NodeCertificate;
  try {
    leaf = new NodeCertificate(cert);
  } catch {
    throw new ConfigError(`DEVID_TLS_CERT=${files.cert} holds no PEM certificate: give the server certificate, then its intermediates, in PEM`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new ConfigError(`DEVID_TLS_KEY=${files.key} holds no unencrypted PEM private key: give the key of DEVID_TLS_CERT, without a passphrase`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new ConfigError(`DEVID_TLS_KEY=${files.key} is not the key of DEVID_TLS_CERT=${files.cert} (${leaf.subject.replace(/\n/g, ', ')}): give the key that certificate was issued for`);
  }
  const notAfter = new Date(leaf.validTo);
  if (notAfter <= now || new Date(leaf.validFrom) > now) warn(`DEVID_TLS_CERT is not valid now (${leaf.validFrom} to ${leaf.validTo}): devices will refuse it; replace it`);
  if (leaf.checkHost(host) === undefined && leaf.checkIP(host) === undefined) warn(`DEVID_TLS_CERT does not name DEVID_PUBLIC_HOST ${host}: devices that connect to ${host} will refuse it`);
  return { key, cert, notAfter };
}
