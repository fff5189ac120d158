import { verify as nodeVerify } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { Signer } from '../../ca/signer.ts';
import { sha256Hex } from '../../ca/digest.ts';
import { checkCertificate, isKeyRefusal } from '../../pki/certificate-key.ts';
import type { CheckedKey } from '../../pki/public-key.ts';
import { conflict, malformed } from '../../errors/domain-error.ts';
import { LOCKS } from '../../store/locks.ts';
import type { OwnershipStatementStore, OwnershipStatementWrites } from '../../store/subsets.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { activeManufacturer, checkSigner, claimDevices } from './claims.ts';
import { recordTransfer } from '../lifecycle/lifecycle.ts';
import { trustOf } from './manufacturers.ts';
import { checkModelName, checkBatch, checkName, checkSerial } from '../identifiers.ts';
import type { Principal } from '../lifecycle/support-grants.ts';

export const STATEMENT_TYPE = 'devid-ca ownership statement';
const MAX_CHAIN = 64;

/**
 * One link of a device's ownership chain across companies (docs/operators/manufacturers.md,
 * after FIDO Device Onboard's ownership vouchers): who handed the device to
 * whom and when, bound to its birth certificate and to the previous link,
 * signed by the handing CA's audit key (an HSM key certified by its root).
 */
export interface OwnershipStatement {
  type: typeof STATEMENT_TYPE;
  version: 1;
  device: string;
  birthCertificateSha256: string;
  from: string | null;
  to: string;
  at: string;
  /** SHA-256 of the previous statement's canonical JSON (signature included); null for the first. */
  previous: string | null;
  /** The signing certificate, then its issuer (the handing CA's root), base64 DER. */
  signer: string[];
  /** Over the RFC 8785 canonical JSON of every other field: ECDSA, DER. */
  signature: string;
}

export interface OwnershipChain {
  statements: OwnershipStatement[];
}

/** SHA-256 of a statement's canonical JSON, signature included: what the next link's `previous` names. */
export function statementHash(statement: OwnershipStatement): string {
  return sha256Hex(canonicalize(statement)!);
}

function signedPart(statement: OwnershipStatement): Buffer {
  const { signature: _signature, ...rest } = statement;
  return Buffer.from(canonicalize(rest)!, 'utf8');
}

function checkStatementShape(value: unknown, i: number): OwnershipStatement {
  const where = `statements[${i}]`;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`${where} is not an ownership statement`);
  const s = value as Record<string, unknown>;
  const keys = ['type', 'version', 'device', 'birthCertificateSha256', 'from', 'to', 'at', 'previous', 'signer', 'signature'];
  if (Object.keys(s).length !== keys.length || !keys.every((k) => k in s)) throw malformed(`${where} must have exactly the fields ${keys.join(', ')}`);
  if (s.type !== STATEMENT_TYPE || s.version !== 1) throw malformed(`${where} is not a version 1 "${STATEMENT_TYPE}"`);
  checkSerial(s.device);
  if (typeof s.birthCertificateSha256 !== 'string' || !/^[0-9a-f]{64}$/.test(s.birthCertificateSha256)) throw malformed(`${where}.birthCertificateSha256 is 64 lowercase hex digits`);
  if (s.from !== null) checkName('from', s.from);
  checkName('to', s.to);
  if (typeof s.at !== 'string' || Number.isNaN(Date.parse(s.at))) throw malformed(`${where}.at is an ISO 8601 time`);
  if (s.previous !== null && (typeof s.previous !== 'string' || !/^[0-9a-f]{64}$/.test(s.previous))) throw malformed(`${where}.previous is null or 64 lowercase hex digits`);
  if (!Array.isArray(s.signer) || s.signer.length < 1 || s.signer.length > 4 || !s.signer.every((c) => typeof c === 'string' && c.length < 16_384)) throw malformed(`${where}.signer is 1 to 4 base64 certificates`);
  if (typeof s.signature !== 'string' || s.signature.length > 1024) throw malformed(`${where}.signature is base64`);
  return value as OwnershipStatement;
}

/**
 * Checks a chain: every signature by its signing certificate, each link
 * naming the hash of the one before, one device and birth certificate
 * throughout, each `from` the previous `to`. Every signer must be certified
 * by a root itself (as a CA's audit key is) and name no device.
 * `trusted` (DER roots) says whose signatures count: offline (`last: false`)
 * every link must chain to one of them; at an import (`last: true`) the
 * handing CA's roots vouch for the last link, whose `previous` hash commits
 * to every link before it, which then need only verify against the root they
 * carry (after FDO's ownership vouchers: each owner signs over the history).
 * Returns the checked statements, or throws malformed naming the link.
 */
export function verifyOwnershipChain(chain: unknown, trusted: readonly Buffer[], now: Date, options: { last?: boolean } = {}): OwnershipStatement[] {
  if (typeof chain !== 'object' || chain === null || !Array.isArray((chain as OwnershipChain).statements)) throw malformed('an ownership chain is {"statements": [...]}');
  const raw = (chain as OwnershipChain).statements;
  if (raw.length === 0 || raw.length > MAX_CHAIN) throw malformed(`an ownership chain has 1 to ${MAX_CHAIN} statements`);
  const statements = raw.map(checkStatementShape);
  statements.forEach((s, i) => {
    const where = `statements[${i}]`;
    const at = new Date(s.at);
    if (at.getTime() > now.getTime() + 5 * 60_000) throw malformed(`${where} is dated in the future`);
    let signer: Buffer[];
    let key: CheckedKey;
    try {
      signer = s.signer.map((b64) => Buffer.from(b64, 'base64'));
      ({ key } = checkCertificate(signer[0]!));
    } catch (err) {
      if (isKeyRefusal(err)) throw malformed(`${where}.signer has a public key that is refused: ${err.detail}`);
      throw malformed(`${where}.signer is not a certificate`);
    }
    const vouched = options.last !== true || i === statements.length - 1;
    // The signer must have been valid when it signed: a statement is kept for years, its audit key may expire meanwhile.
    checkSigner(signer.slice(0, 1), { anchors: vouched ? [...trusted] : signer.slice(1), withdrawn: new Set() }, at, true, `${where}'s signer`);
    let valid = false;
    try {
      valid = nodeVerify('sha256', signedPart(s), key.key, Buffer.from(s.signature, 'base64'));
    } catch {
      valid = false;
    }
    if (!valid) throw malformed(`${where}: the signature does not verify`);
    if (i === 0) {
      if (s.previous !== null) throw malformed('statements[0] names a previous statement the chain does not hold');
      return;
    }
    const before = statements[i - 1]!;
    if (s.previous !== statementHash(before)) throw malformed(`${where}.previous is not the hash of statements[${i - 1}]`);
    if (s.device !== before.device || s.birthCertificateSha256 !== before.birthCertificateSha256) throw malformed(`${where} is about another device`);
    if (s.from !== before.to) throw malformed(`${where}.from (${s.from}) is not statements[${i - 1}].to (${before.to})`);
    if (at < new Date(before.at)) throw malformed(`${where} is older than the statement before it`);
  });
  return statements;
}

export interface StatementSigner {
  signer: Signer;
  /** The audit key's certificate and the root that issued it, DER. */
  chain: Buffer[];
}

/** The birth certificate a device is bound to: the claimed one, or our own birth certificate. */
async function birthHashOf(tx: OwnershipStatementWrites, serial: string): Promise<string> {
  const claim = await tx.claims.find(serial);
  if (claim?.birthCertificateSha256 === null) throw conflict(`device ${serial} is claimed by its serial alone (no birth certificate): its ownership cannot be handed on in a statement`);
  if (claim) return claim.birthCertificateSha256;
  const birth = await tx.certificates.newestOfDevice(serial, 'birth');
  if (!birth) throw conflict(`device ${serial} has no birth certificate`);
  return birth.sha256;
}

/**
 * POST /operator/v1/devices/<serial>/ownership-statement {"to", "evidence"}:
 * the device passes to another company. Records the transfer as any
 * transfer (recordTransfer), signs a statement linked to the device's last one (imported or
 * exported) and answers the whole chain, for the receiving CA to import.
 */
export async function exportOwnership(store: OwnershipStatementStore, audit: AuditLog, statementSigner: StatementSigner, who: Principal, serial: string, to: string, evidence: string, now: Date): Promise<OwnershipChain> {
  return audit.record(store, async (tx) => {
    await tx.lock(LOCKS.device(serial));
    const { from, event } = await recordTransfer(tx, who, serial, to, evidence, now);
    const earlier = (await tx.claims.statements(serial)).map((r) => JSON.parse(r.statement) as OwnershipStatement);
    const last = earlier.at(-1);
    const unsigned = {
      type: STATEMENT_TYPE as typeof STATEMENT_TYPE, version: 1 as const, device: serial, birthCertificateSha256: await birthHashOf(tx, serial),
      from, to, at: now.toISOString(), previous: last ? statementHash(last) : null, signer: statementSigner.chain.map((d) => d.toString('base64')),
    };
    const { signature } = await statementSigner.signer.sign(Buffer.from(canonicalize(unsigned)!, 'utf8'));
    const statement: OwnershipStatement = { ...unsigned, signature: signature.toString('base64') };
    const hash = statementHash(statement);
    await tx.claims.insertStatement({ deviceSerial: serial, statement: JSON.stringify(statement), sha256: hash, direction: 'exported', at: now });
    return {
      value: { statements: [...earlier, statement] },
      events: [
        event,
        { action: 'ownership.statement-exported', actor: who.actor, device: serial, data: { to, statementSha256: hash, previous: unsigned.previous } },
      ],
    };
  });
}

/**
 * POST /operator/v1/ownership-statements {"statements", "manufacturer",
 * "model", "batch"?, "issuer"?}: a device handed to us by another CA. The
 * chain must verify (verifyOwnershipChain), its last link signed under the
 * active anchor of `issuer` (the handing CA, registered as a manufacturer; by
 * default the device's manufacturer itself, when the handing CA made the
 * device); the device is then claimed for `manufacturer` with the birth certificate the chain
 * names, owned by the last `to`, and the chain is kept so a later hand-over
 * extends it.
 */
export async function importOwnership(
  store: OwnershipStatementStore, audit: AuditLog, who: Principal, body: { statements?: unknown; manufacturer?: unknown; model?: unknown; batch?: unknown; issuer?: unknown }, now: Date,
): Promise<{ device: string; owner: string }> {
  const manufacturer = checkName('manufacturer', body.manufacturer);
  const issuer = body.issuer === undefined ? manufacturer : checkName('issuer', body.issuer);
  const model = checkModelName(body.model);
  const batch = body.batch === undefined ? undefined : checkBatch(body.batch);
  const { anchors } = trustOf(activeManufacturer(await store.manufacturers.find(issuer), issuer));
  const statements = verifyOwnershipChain({ statements: body.statements }, anchors, now, { last: true });
  const last = statements.at(-1)!;
  const lastHash = statementHash(last);
  const claimed = { serial: last.device, model, birthCertificateSha256: last.birthCertificateSha256, ...(batch ? { batch } : {}) };
  await claimDevices(store, audit, who, {
    manufacturer, devices: [claimed], source: 'statement', manifestSha256: lastHash, owner: last.to,
    events: [{ action: 'ownership.statement-imported', actor: who.actor, device: last.device, data: { manufacturer, issuer, from: last.from, to: last.to, statements: statements.length, statementSha256: lastHash, principal: who.principal } }],
    afterClaim: async (tx) => {
      for (const s of statements) await tx.claims.insertStatement({ deviceSerial: last.device, statement: JSON.stringify(s), sha256: statementHash(s), direction: 'imported', at: now });
      await tx.ownership.insert({ deviceSerial: last.device, from: last.from, to: last.to, evidence: `ownership statement ${lastHash}`, principal: who.principal, actor: who.actor, at: now });
    },
  }, now);
  return { device: last.device, owner: last.to };
}
