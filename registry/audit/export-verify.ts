import canonicalize from 'canonicalize';
import { X509Certificate, createHash, verify as nodeVerify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { checkCertificate, type CheckedCertificate } from '../../pki/certificate-key.ts';
import { EXPORT_FORMAT } from './audit-export.ts';
import { GENESIS } from './audit-log.ts';
import { FirmwareExportCheck } from './export-firmware-verify.ts';

export interface ExportReport {
  ok: boolean;
  cas: number;
  checkpoints: number;
  manufacturers: number;
  devices: number;
  certificates: number;
  events: number;
  /** Firmware lineage steps, and the signed manifests they name (export-firmware-verify.ts). */
  firmware: number;
  manifests: number;
  /** The first problems found (at most 20), each with its line number. */
  problems: string[];
}

interface CaLine { id: number; role: string; slug: string; der: string }
interface CheckpointLine { seq: number; head: string; at: string; key: string; signature: string }
interface CertificateLine { serial: string; device: string | null; issuerId: number; sha256: string; predecessorSha256: string | null; der: string }
interface EventLine { seq: number; hash: string; canonical: string }

const sha256Hex = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * `devid-ca audit verify-export FILE --root root.pem`: checks an export
 * with no database and no HSM, trusting only the root certificate given:
 * the CA certificates up to the root, the audit key's certificate, the
 * signature over the whole file, every checkpoint signature, the hash chain
 * of the events and the checkpoint heads in it, every certificate's
 * signature and hash, every predecessor link, and the firmware manifests
 * the lineage names (export-firmware-verify.ts).
 */
export async function verifyExport(path: string, rootPem: string): Promise<ExportReport> {
  // Parsing touches no key; every key is checked before it verifies anything (checkCertificate).
  const root = checkCertificate(new X509Certificate(rootPem).raw);
  const report: ExportReport = { ok: false, cas: 0, checkpoints: 0, manufacturers: 0, devices: 0, certificates: 0, events: 0, firmware: 0, manifests: 0, problems: [] };
  const firmware = new FirmwareExportCheck();
  const problem = (lineNumber: number, text: string) => {
    if (report.problems.length < 20) report.problems.push(`line ${lineNumber}: ${text}`);
  };
  const digest = createHash('sha256');
  const cas = new Map<number, { cert: CheckedCertificate; role: string }>();
  /** Other manufacturers' registered certificates, by manufacturer id. */
  const manufacturers = new Map<string, CheckedCertificate[]>();
  let auditCert: CheckedCertificate | undefined;
  const issued = (c: CheckedCertificate, issuer: CheckedCertificate) => c.cert.checkIssued(issuer.cert) && c.cert.verify(issuer.key.key);
  const heads = new Map<number, string>();
  /** Certificate hash -> its device: a predecessor must be the same device's. */
  const hashes = new Map<string, string | null>();
  const predecessors: Array<[number, string, string | null]> = [];
  let fleet = false;
  let firstSeq: number | undefined;
  let prev: string | undefined;
  let nextSeq: number | undefined;
  let ended = false;
  let lineNumber = 0;

  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  for await (const text of lines) {
    lineNumber += 1;
    if (ended) {
      problem(lineNumber, 'text after the end line');
      break;
    }
    let value: Record<string, unknown>;
    try {
      value = JSON.parse(text) as Record<string, unknown>;
    } catch {
      problem(lineNumber, 'not JSON');
      break;
    }
    if (value.type !== 'end') digest.update(`${text}\n`);
    try {
      switch (value.type) {
        case 'export':
          if (lineNumber !== 1 || value.format !== EXPORT_FORMAT) problem(lineNumber, `not a ${EXPORT_FORMAT} export`);
          fleet = typeof value.scope === 'object' && value.scope !== null && Object.keys(value.scope).length === 0;
          break;
        case 'ca': {
          const ca = value as unknown as CaLine;
          const cert = checkCertificate(Buffer.from(ca.der, 'base64'));
          report.cas += 1;
          if (ca.role === 'root') {
            if (!cert.der.equals(root.der)) problem(lineNumber, 'the root in the export is not the root given');
          } else if (!issued(cert, root)) {
            problem(lineNumber, `the ${ca.slug} certificate is not signed by the root given`);
            break;
          }
          cas.set(ca.id, { cert, role: ca.role });
          firmware.ca(ca.role, cert);
          if (ca.role === 'audit') {
            // The audit key signs checkpoints, never certificates: a CA certificate labelled "audit" is not it.
            if (cert.cert.ca || auditCert) problem(lineNumber, 'a second audit certificate, or a CA certificate labelled as the audit key');
            else auditCert = cert;
          }
          break;
        }
        case 'checkpoint': {
          const { signature, ...body } = value as unknown as CheckpointLine & { type: string };
          const { type: _type, ...signed } = body;
          report.checkpoints += 1;
          if (!auditCert || !nodeVerify('sha256', Buffer.from(canonicalize(signed)!, 'utf8'), auditCert.key.key, Buffer.from(signature, 'base64'))) {
            problem(lineNumber, `checkpoint ${signed.seq}: the signature does not verify with the audit key certified by the root`);
          }
          if (heads.has(signed.seq)) problem(lineNumber, `a second checkpoint for event ${signed.seq}`);
          heads.set(signed.seq, signed.head);
          break;
        }
        case 'device':
          report.devices += 1;
          firmware.device(value.serial);
          break;
        case 'firmware':
          firmware.firmwareLine(lineNumber, value);
          break;
        case 'firmware-manifest':
          firmware.manifestLine(lineNumber, value, problem);
          break;
        case 'manufacturer': {
          report.manufacturers += 1;
          // Retired certificates too: a birth issued before an intermediate was withdrawn still shows where it came from.
          const listed = [...(Array.isArray(value.certificates) ? value.certificates : []), ...(Array.isArray(value.retired) ? value.retired : [])];
          const certificates = listed.map((b64) => checkCertificate(Buffer.from(String(b64), 'base64')));
          manufacturers.set(String(value.id), certificates);
          break;
        }
        case 'outside-birth': {
          // A birth certificate from another manufacturer: it must be issued by one of that manufacturer's registered certificates.
          const der = Buffer.from(String(value.der), 'base64');
          report.certificates += 1;
          const cert = checkCertificate(der);
          if (sha256Hex(der) !== value.sha256) problem(lineNumber, `outside birth certificate of ${String(value.device)}: its SHA-256 is not the one recorded`);
          // Its path as attested (intermediates a device sent included), link by link, up to a certificate the manufacturer registered.
          const registered = manufacturers.get(String(value.manufacturer)) ?? [];
          const path = (Array.isArray(value.path) ? value.path : []).map((b64) => checkCertificate(Buffer.from(String(b64), 'base64')));
          const linked = [cert, ...path].every((c, i, all) => i === all.length - 1 || issued(c, all[i + 1]!));
          const top = path.at(-1);
          if (!linked || !top || !registered.some((r) => r.der.equals(top.der))) {
            problem(lineNumber, `outside birth certificate of ${String(value.device)}: its path does not lead to a certificate of manufacturer ${String(value.manufacturer)} in this export`);
          }
          hashes.set(String(value.sha256), String(value.device));
          break;
        }
        case 'certificate': {
          const c = value as unknown as CertificateLine;
          const der = Buffer.from(c.der, 'base64');
          report.certificates += 1;
          const issuer = cas.get(c.issuerId);
          const cert = checkCertificate(der);
          if (sha256Hex(der) !== c.sha256) problem(lineNumber, `certificate ${c.serial}: its SHA-256 is not the one recorded`);
          // Devices' certificates come from the intermediates only.
          if (!issuer || (issuer.role !== 'factory' && issuer.role !== 'operational') || !issued(cert, issuer.cert)) {
            problem(lineNumber, `certificate ${c.serial}: not signed by its issuing intermediate in this export`);
          }
          if (cert.cert.serialNumber.toLowerCase() !== c.serial) problem(lineNumber, `certificate ${c.serial}: the certificate has serial ${cert.cert.serialNumber}`);
          hashes.set(c.sha256, c.device);
          if (c.predecessorSha256) predecessors.push([lineNumber, c.predecessorSha256, c.device]);
          break;
        }
        case 'event': {
          const e = value as unknown as EventLine;
          report.events += 1;
          const event = JSON.parse(e.canonical) as { seq: number; prev: string; device?: string };
          if (canonicalize(event) !== e.canonical) problem(lineNumber, `event ${e.seq} is not in canonical form`);
          if (sha256Hex(e.canonical) !== e.hash) problem(lineNumber, `event ${e.seq}: its hash does not match its canonical JSON`);
          firstSeq ??= e.seq;
          if (fleet && firstSeq !== 1) problem(lineNumber, 'a fleet export starts at the first event');
          if (event.seq !== e.seq || (nextSeq !== undefined && e.seq !== nextSeq)) problem(lineNumber, `event ${e.seq}: out of sequence`);
          // The first event exported links to one before the scope: its prev is where the chain starts.
          if (prev !== undefined ? event.prev !== prev : e.seq === 1 && event.prev !== GENESIS) problem(lineNumber, `event ${e.seq} does not link to the event before it`);
          const head = heads.get(e.seq);
          if (head !== undefined && head !== e.hash) problem(lineNumber, `event ${e.seq} is not the head checkpoint ${e.seq} signed`);
          heads.delete(e.seq);
          firmware.event(lineNumber, event);
          prev = e.hash;
          nextSeq = e.seq + 1;
          break;
        }
        case 'end': {
          ended = true;
          const expected = digest.digest();
          if (value.sha256 !== expected.toString('hex')) problem(lineNumber, 'the file was changed: its SHA-256 is not the one signed');
          else if (!auditCert || !nodeVerify('sha256', expected, auditCert.key.key, Buffer.from(String(value.signature), 'base64'))) problem(lineNumber, 'the signature over the file does not verify with the audit key');
          Object.assign(report, firmware.counts);
          for (const kind of ['cas', 'checkpoints', 'manufacturers', 'devices', 'certificates', 'events', 'firmware', 'manifests'] as const) {
            // Exports from before manufacturers existed have no count for them: none.
            if ((value[kind] ?? 0) !== report[kind]) problem(lineNumber, `the end line counts ${String(value[kind])} ${kind}, the file has ${report[kind]}`);
          }
          break;
        }
        default:
          problem(lineNumber, `unknown line type ${JSON.stringify(value.type)}`);
      }
    } catch (err) {
      problem(lineNumber, `unreadable ${String(value.type)} line: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  if (!ended) problem(lineNumber, 'the export has no end line: it is cut short');
  Object.assign(report, firmware.counts);
  firmware.finish(problem);
  if (!auditCert) problem(0, 'no audit key certificate in the export');
  // Checkpoints left unmatched: inside the exported range their event is missing; past its end, events were cut off.
  for (const [seq] of heads) {
    if (nextSeq === undefined || seq >= nextSeq) problem(0, `checkpoint ${seq} signs an event the export does not reach: events were cut off`);
    else if (firstSeq !== undefined && seq >= firstSeq) problem(0, `checkpoint ${seq}: its event is missing`);
  }
  for (const [at, hash, device] of predecessors) {
    if (!hashes.has(hash)) problem(at, `predecessor ${hash} is not a certificate of the export`);
    else if (hashes.get(hash) !== device) problem(at, `predecessor ${hash} belongs to another device`);
  }
  report.ok = report.problems.length === 0;
  return report;
}
