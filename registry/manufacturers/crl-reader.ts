import * as asn1js from 'asn1js';
import { malformed } from '../../errors/domain-error.ts';

/**
 * Reads another CA's CRL (RFC 5280 5.1) in one pass over its DER. A
 * manufacturer that revokes a whole batch publishes a CRL of 100,000
 * entries: @peculiar/x509 refuses it (asn1js's 10,000-node guard), and
 * asn1js with the guard raised takes 9.6 s of the event loop for it. So
 * the entry list, the one large part, is walked here with bounds checks on
 * every length; the small parts (times, the CRL number) still go through
 * asn1js. The signature is checked by the caller over `tbs`.
 */
export interface ReadCrl {
  /** tbsCertList as it was signed. */
  tbs: Buffer;
  /** The signature algorithm's OID and the signature's bytes. */
  signatureAlgorithm: string;
  signature: Buffer;
  /** The issuer Name's DER, compared with the issuing certificate's subject DER. */
  issuer: Buffer;
  thisUpdate: Date;
  nextUpdate: Date | null;
  number: bigint | null;
  entries: Array<{ serialHex: string; revokedAt: Date; reason: number | null }>;
}

const bad = (what: string) => malformed(`not an X.509 CRL: ${what}`);

interface Element {
  tag: number;
  /** Offset of the first byte of the element, and of its contents. */
  start: number;
  contents: number;
  end: number;
}

/** One DER element at `offset`, every length checked against `limit` (definite lengths, minimal length octets). */
function read(der: Buffer, offset: number, limit: number): Element {
  if (offset + 2 > limit) throw bad('truncated');
  const tag = der[offset]!;
  if ((tag & 0x1f) === 0x1f) throw bad('a high tag number');
  let length = der[offset + 1]!;
  let contents = offset + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || contents + count > limit) throw bad('a bad length');
    length = 0;
    for (let i = 0; i < count; i += 1) length = length * 256 + der[contents + i]!;
    if (length < 0x80 || (count > 1 && der[contents] === 0)) throw bad('a length not in DER');
    contents += count;
  }
  const end = contents + length;
  if (end > limit) throw bad('an element longer than what holds it');
  return { tag, start: offset, contents, end };
}

/** The elements inside a constructed element, in order. */
function children(der: Buffer, parent: Element): Element[] {
  const out: Element[] = [];
  for (let offset = parent.contents; offset < parent.end;) {
    const child = read(der, offset, parent.end);
    out.push(child);
    offset = child.end;
  }
  return out;
}

function expect(element: Element | undefined, tag: number, what: string): Element {
  if (!element || element.tag !== tag) throw bad(`${what} is missing or of the wrong type`);
  return element;
}

const bytes = (der: Buffer, e: Element) => der.subarray(e.contents, e.end);

/** UTCTime (YYMMDDHHMMSSZ, 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ), as RFC 5280 4.1.2.5 allows them. */
function time(der: Buffer, e: Element, what: string): Date {
  const text = bytes(der, e).toString('latin1');
  const match = e.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : e.tag === 0x18 ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text) : null;
  if (!match) throw bad(`${what} is not a UTCTime or GeneralizedTime in Z`);
  const year = e.tag === 0x17 ? (Number(match[1]) < 50 ? 2000 : 1900) + Number(match[1]) : Number(match[1]);
  const date = new Date(Date.UTC(year, Number(match[2]) - 1, Number(match[3]), Number(match[4]), Number(match[5]), Number(match[6])));
  if (Number.isNaN(date.getTime()) || date.getUTCDate() !== Number(match[3])) throw bad(`${what} is not a date`);
  return date;
}

/** The OIDs every entry may carry, by their DER contents: decoded without a parser, as there may be 100,000 of them. */
const KNOWN_OIDS: Record<string, string> = { '551d15': '2.5.29.21', '551d1d': '2.5.29.29', '551d14': '2.5.29.20', '551d1b': '2.5.29.27', '551d1c': '2.5.29.28' };

function oidOf(der: Buffer, e: Element): string {
  const known = KNOWN_OIDS[der.toString('hex', e.contents, e.end)];
  if (known) return known;
  const parsed = asn1js.fromBER(der.subarray(e.start, e.end));
  if (parsed.offset === -1 || !(parsed.result instanceof asn1js.ObjectIdentifier)) throw bad('an OID');
  return parsed.result.valueBlock.toString();
}

const REASON_CODE = '2.5.29.21';
const CRL_NUMBER = '2.5.29.20';
/** Entry extensions that change whom an entry is about (an indirect CRL's certificateIssuer) cannot be ignored: such a CRL is refused. */
const CERTIFICATE_ISSUER = '2.5.29.29';
const ISSUING_DISTRIBUTION_POINT = '2.5.29.28';
const DELTA_CRL_INDICATOR = '2.5.29.27';

/** Extensions: [{oid, critical, value}] from a SEQUENCE OF Extension. */
function extensions(der: Buffer, list: Element): Array<{ oid: string; critical: boolean; value: Element }> {
  return children(der, expect(list, 0x30, 'the extensions')).map((ext) => {
    const [id, second, third] = children(der, expect(ext, 0x30, 'an extension'));
    const critical = second?.tag === 0x01;
    const value = expect(critical ? third : second, 0x04, 'an extension value');
    return { oid: oidOf(der, expect(id, 0x06, 'an extension id')), critical: critical && bytes(der, second!)[0] === 0xff, value };
  });
}

/** Parses a CRL's DER; malformed (400) for anything that is not one, or that this reader cannot apply safely (delta, indirect, partitioned). */
export function readCrl(der: Buffer): ReadCrl {
  const list = read(der, 0, der.length);
  if (list.tag !== 0x30 || list.end !== der.length) throw bad('not one SEQUENCE');
  const [tbsElement, algorithm, signature, ...rest] = children(der, list);
  if (rest.length > 0) throw bad('extra elements');
  const tbs = expect(tbsElement, 0x30, 'tbsCertList');
  const algorithmId = children(der, expect(algorithm, 0x30, 'signatureAlgorithm'))[0];
  const signatureBits = bytes(der, expect(signature, 0x03, 'signatureValue'));
  if (signatureBits.length < 1 || signatureBits[0] !== 0) throw bad('the signature is not whole octets');

  const fields = children(der, tbs);
  let i = 0;
  if (fields[i]?.tag === 0x02) i += 1; // version v2
  expect(fields[i++], 0x30, 'the signature algorithm in tbsCertList');
  const issuer = expect(fields[i++], 0x30, 'the issuer');
  const thisUpdate = time(der, fields[i++]!, 'thisUpdate');
  let nextUpdate: Date | null = null;
  if (fields[i] && (fields[i]!.tag === 0x17 || fields[i]!.tag === 0x18)) nextUpdate = time(der, fields[i++]!, 'nextUpdate');
  const entries: ReadCrl['entries'] = [];
  if (fields[i]?.tag === 0x30) {
    for (const entry of children(der, fields[i++]!)) {
      const [serial, date, entryExtensions, ...more] = children(der, expect(entry, 0x30, 'an entry'));
      if (more.length > 0) throw bad('an entry with extra elements');
      let reason: number | null = null;
      for (const ext of entryExtensions ? extensions(der, entryExtensions) : []) {
        if (ext.oid === REASON_CODE) {
          const code = children(der, { tag: 0x04, start: ext.value.start, contents: ext.value.contents, end: ext.value.end })[0];
          const value = bytes(der, expect(code, 0x0a, 'a reasonCode'));
          reason = value.length === 1 ? value[0]! : null;
        } else if (ext.oid === CERTIFICATE_ISSUER || ext.critical) {
          throw bad(`an entry extension ${ext.oid} that this CA does not apply (indirect CRLs are not read)`);
        }
      }
      entries.push({ serialHex: bytes(der, expect(serial, 0x02, 'an entry serial')).toString('hex'), revokedAt: time(der, date!, 'a revocationDate'), reason });
    }
  }
  let number: bigint | null = null;
  if (fields[i]?.tag === 0xa0) {
    const [list] = children(der, fields[i++]!);
    for (const ext of extensions(der, list!)) {
      if (ext.oid === CRL_NUMBER) {
        const parsed = asn1js.fromBER(bytes(der, ext.value));
        if (parsed.offset === -1 || !(parsed.result instanceof asn1js.Integer)) throw bad('the CRL number is not an INTEGER');
        number = parsed.result.toBigInt();
      } else if (ext.oid === DELTA_CRL_INDICATOR || ext.oid === ISSUING_DISTRIBUTION_POINT) {
        throw bad(`the extension ${ext.oid}: delta and partitioned CRLs are not read; publish a full CRL`);
      } else if (ext.critical) {
        throw bad(`the critical extension ${ext.oid}, which this CA does not process`);
      }
    }
  }
  if (i !== fields.length) throw bad('unexpected fields in tbsCertList');
  return {
    tbs: der.subarray(tbs.start, tbs.end), signatureAlgorithm: oidOf(der, expect(algorithmId, 0x06, 'the signature algorithm')), signature: signatureBits.subarray(1),
    issuer: der.subarray(issuer.start, issuer.end), thisUpdate, nextUpdate, number, entries,
  };
}
