import canonicalize from 'canonicalize';
import { DEVICE_PROOF_FORMAT } from './audit-export.ts';
import { openCheckpoint, parseVerifierKey, splitNote, ED25519_TYPE } from '../tlog/signed-note.ts';
import { verifyInclusion } from '../tlog/verify-proofs.ts';

export interface DeviceExportReport {
  ok: boolean;
  serial: string | null;
  size: number | null;
  entries: number;
  /** The first problems found (at most 20). */
  problems: string[];
}

interface ProvedEntryLine { index: unknown; entry: unknown; proof: unknown }

const BASE64_HASH = /^[A-Za-z0-9+/]{43}=$/;

/** A proof hash: exactly the canonical base64 of 32 bytes (a changed padding bit is a change). */
function proofHash(value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || !BASE64_HASH.test(value)) return undefined;
  const hash = Buffer.from(value, 'base64');
  return hash.length === 32 && hash.toString('base64') === value ? hash : undefined;
}

/**
 * `devid-ca audit verify-export FILE --log-key KEY` for a per-device export
 * (registry/audit/audit-export.ts deviceProofExport), with nothing but the
 * log's verifier key: the checkpoint's signature by that key (its only
 * signature line, canonical), every entry's inclusion proof in that
 * checkpoint's tree, every entry an event naming the device at its index.
 * The file must be exactly the line the CA wrote (one JSON line as
 * JSON.stringify writes it), so any changed byte fails. `expectSerial`, when
 * given, must be the export's device (and lets the answer of GET
 * /audit/v1/devices/<serial>/proof be checked too, which names no serial).
 */
export function verifyDeviceExport(text: string, logVerifierKey: string, expectSerial?: string): DeviceExportReport {
  const report: DeviceExportReport = { ok: false, serial: null, size: null, entries: 0, problems: [] };
  const problem = (message: string) => {
    if (report.problems.length < 20) report.problems.push(message);
  };
  const key = parseVerifierKey(logVerifierKey, [ED25519_TYPE]);
  if (!key) {
    problem('the log key is not a verifier key <name>+<hash>+<base64> of an Ed25519 key');
    return report;
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch {
    problem('not JSON');
    return report;
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    problem('not a device proof export');
    return report;
  }
  const exact = JSON.stringify(doc);
  if (text !== exact && text !== `${exact}\n`) problem('the file is not the JSON line the CA wrote (changed spacing, escapes or order)');
  const fromExport = doc.format !== undefined;
  if (fromExport && doc.format !== DEVICE_PROOF_FORMAT) problem(`not a ${DEVICE_PROOF_FORMAT} export`);
  const serial = fromExport ? doc.serial : expectSerial;
  if (typeof serial !== 'string' || serial.length === 0) {
    problem('no device serial: the file names none (give --device for a proof answer)');
    return report;
  }
  if (expectSerial !== undefined && serial !== expectSerial) problem(`the export is of device ${serial}, not ${expectSerial}`);
  report.serial = serial;
  const note = typeof doc.checkpoint === 'string' ? doc.checkpoint : '';
  const split = splitNote(note);
  const body = openCheckpoint(note, key.name, key.publicKey, key.rawPublicKey);
  const signatureLine = split?.signatures.length === 1 ? /^\u2014 \S+ ([A-Za-z0-9+/=]+)$/u.exec(split.signatures[0]!) : null;
  if (!body || !signatureLine || Buffer.from(signatureLine[1]!, 'base64').toString('base64') !== signatureLine[1]) {
    problem(`the checkpoint is not signed by the log key "${key.name}" alone, or is malformed`);
    return report;
  }
  if (body.origin !== key.name) problem(`the checkpoint's origin "${body.origin}" is not the log key's name`);
  if (doc.size !== body.size) problem(`the export says size ${String(doc.size)}, its checkpoint signs ${body.size}`);
  report.size = body.size;
  const entries = Array.isArray(doc.entries) ? (doc.entries as ProvedEntryLine[]) : undefined;
  if (!entries) {
    problem('no entries list');
    return report;
  }
  let lastIndex = -1;
  for (const [i, item] of entries.entries()) {
    report.entries += 1;
    const { index, entry, proof } = item ?? {};
    if (typeof index !== 'number' || !Number.isSafeInteger(index) || index <= lastIndex || index >= body.size) {
      problem(`entry ${i}: its index is not after the one before and inside the tree of ${body.size}`);
      continue;
    }
    lastIndex = index;
    if (typeof entry !== 'string' || !Array.isArray(proof)) {
      problem(`entry ${index}: no entry text or no proof`);
      continue;
    }
    const hashes = proof.map(proofHash);
    if (hashes.some((h) => h === undefined) || !verifyInclusion(Buffer.from(entry, 'utf8'), index, body.size, hashes as Buffer[], body.root)) {
      problem(`entry ${index}: its inclusion proof does not lead to the checkpoint's root`);
      continue;
    }
    let event: { seq?: unknown; device?: unknown };
    try {
      event = JSON.parse(entry) as typeof event;
    } catch {
      problem(`entry ${index}: not an audit event`);
      continue;
    }
    if (canonicalize(event) !== entry) problem(`entry ${index}: not in canonical form`);
    if (event.seq !== index + 1) problem(`entry ${index}: the event's seq is ${String(event.seq)}, not ${index + 1}`);
    if (event.device !== serial) problem(`entry ${index}: the event names ${JSON.stringify(event.device ?? null)}, not the device ${serial}`);
  }
  const known = new Set(fromExport ? ['format', 'serial', 'size', 'checkpoint', 'entries'] : ['size', 'checkpoint', 'entries']);
  for (const member of Object.keys(doc)) if (!known.has(member)) problem(`an unknown member ${JSON.stringify(member)}`);
  report.ok = report.problems.length === 0;
  return report;
}
