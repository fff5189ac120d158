import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AsnConvert } from '@peculiar/asn1-schema';
import { OCSPRequest } from '@peculiar/asn1-ocsp';
import { isHsmUnavailable } from '../hsm/errors.ts';
import type { OcspResponseRecord } from '../store/ocsp-store.ts';
import type { OcspAnswerStore } from '../store/subsets.ts';
import type { Logger } from '../platform/logger.ts';
import { PROBLEM } from '../platform/problem-types.ts';
import { BodyTooLarge, readBody } from '../platform/read-body.ts';
import { CERT_ID_HASHES, hashOfOid, serialOfInteger, type IssuerCertIds, type IssuerDirectory } from './cert-ids.ts';
import { ocspErrorResponse, responseStatusOf, singleResponse, type CertStatus } from './ocsp-der.ts';
import { certIdOfRequest } from './ocsp-request.ts';
import { NoResponderError, statusOf, type OcspSigner } from './ocsp-signer.ts';
import { OCSP_CACHE_ENTRIES, OCSP_VALIDITY_MS } from './ocsp-validity.ts';

/** RFC 6960 A.1 requests are small; a few KiB is generous. */
const BODY_LIMIT = 16 * 1024;
/** GET URLs carry the request in base64: RFC 5019 asks for GET under 255 bytes. */
const GET_LIMIT = 4096;
/** CertIDs in one request: answering several needs a signature made on the spot. */
const MAX_CERT_IDS = 16;
/** Signatures made on request (several CertIDs, unknown serials) per second: the HSM is not a public service. */
const ON_DEMAND_PER_SECOND = 50;
const UNKNOWN_CACHE_ENTRIES = 1000;
/** A CertID found absent is believed absent this long (serials are random: nobody asks for one before it exists). */
const ABSENT_MS = 10_000;
const ABSENT_ENTRIES = 100_000;

const CONTENT_TYPE = 'application/ocsp-response';
const MAX_AGE_S = 60;

interface CachedResponse {
  der: Buffer;
  etag: string;
  lastModified: string;
  expires: string;
  nextUpdateMs: number;
}

interface Answer {
  der: Buffer;
  /** Set for pre-signed responses: what GET caching headers say (RFC 5019 6). */
  cached?: CachedResponse;
}

function cachedResponse(der: Buffer, thisUpdate: Date, nextUpdate: Date): CachedResponse {
  return {
    der,
    etag: `"${createHash('sha1').update(der).digest('hex')}"`,
    lastModified: thisUpdate.toUTCString(),
    expires: nextUpdate.toUTCString(),
    nextUpdateMs: nextUpdate.getTime(),
  };
}

/**
 * The OCSP responder (RFC 6960, RFC 5019 profile) on the plain-HTTP
 * listener, outside express. The common request, one CertID, is answered
 * from memory: its CertID bytes find a pre-signed response. Anything else
 * goes through @peculiar/asn1-ocsp, the database, and for several CertIDs
 * or an unknown serial a signature made on the spot, bounded per second.
 * Answering never writes to the database.
 *
 * One rule for what a request may learn (RFC 6960 2.2, 2.3): a CertID
 * whose issuer is not a CA we answer for (a stranger, or the root, whose
 * key stays offline) is `unauthorized`, before any lookup; for our CAs the
 * answer is signed `good`, `revoked` or `unknown`, and a serial issued by
 * another of our CAs is looked up, refused and answered exactly as one that
 * exists nowhere.
 */
export class OcspResponder {
  private readonly cache = new Map<string, CachedResponse>();
  private readonly unknown = new Map<string, CachedResponse>();
  /** Certificates in the cache: their keys, and the thisUpdate of the responses held (null: dropped as stale). */
  private readonly cachedSerials = new Map<string, { keys: string[]; thisUpdateMs: number | null }>();
  /** CertIDs with no pre-signed response, and until when to believe it. */
  private readonly absent = new Map<string, number>();
  private tokens = ON_DEMAND_PER_SECOND;
  /** Told the OCSPResponseStatus of each answer (metrics). */
  onAnswer?: (status: string) => void;
  private refilledAt = Date.now();
  /** Answers of one CertID found in memory, and those that went to the database or were signed on the spot (metrics: the hit rate). */
  readonly stats = { hits: 0, misses: 0 };

  constructor(
    private readonly store: OcspAnswerStore,
    private readonly directory: IssuerDirectory,
    private readonly signer: OcspSigner,
    private readonly clock: () => Date,
    private readonly logger: Logger,
    /** Responses kept in memory at most (two per certificate: SHA-1 and SHA-256 CertIDs); the least recently asked for go first. */
    private readonly cacheEntries = OCSP_CACHE_ENTRIES,
  ) {}

  handles(url: string | undefined): boolean {
    return url === '/ocsp' || (url?.startsWith('/ocsp/') ?? false);
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let request: Buffer;
    if (req.method === 'GET' && req.url!.length > 6) {
      if (req.url!.length > GET_LIMIT) return sendStatus(res, 414, 'the OCSP request in the URL is too long: use POST');
      request = decodeGetRequest(req.url!.slice(6));
    } else if (req.method === 'POST' && req.url === '/ocsp') {
      if (req.headers['content-type'] !== 'application/ocsp-request') {
        req.resume();
        return sendStatus(res, 415, 'OCSP requests are POSTed as application/ocsp-request');
      }
      try {
        request = await readBody(req, BODY_LIMIT);
      } catch (err) {
        if (err instanceof BodyTooLarge) return sendStatus(res, 413, `OCSP requests are at most ${BODY_LIMIT} bytes`);
        throw err;
      }
    } else {
      req.resume();
      res.setHeader('Allow', 'GET, POST');
      return sendStatus(res, 405, 'OCSP takes POST /ocsp or GET /ocsp/<base64 request>');
    }
    const answer = await this.answer(request);
    const headers: Record<string, string | number> = { 'Content-Type': CONTENT_TYPE, 'Content-Length': answer.der.length };
    if (answer.cached && req.method === 'GET') {
      // RFC 5019 6: before nextUpdate; a minute at most, so a revocation reaches HTTP caches as fast as it reaches the CRL.
      const maxAge = Math.max(0, Math.min(MAX_AGE_S, Math.floor((answer.cached.nextUpdateMs - this.clock().getTime()) / 1000)));
      headers['Cache-Control'] = `public, max-age=${maxAge}, no-transform, must-revalidate`;
      headers.ETag = answer.cached.etag;
      headers['Last-Modified'] = answer.cached.lastModified;
      headers.Expires = answer.cached.expires;
    } else {
      headers['Cache-Control'] = 'no-store';
    }
    res.writeHead(200, headers);
    res.end(answer.der);
    this.onAnswer?.(responseStatusOf(answer.der));
  }

  /** The OCSPResponse for a DER request: pre-signed when it can be, never a crash. */
  async answer(request: Buffer): Promise<Answer> {
    const certId = certIdOfRequest(request);
    try {
      if (certId) {
        const key = certId.toString('latin1');
        const cached = this.cache.get(key);
        if (cached) {
          this.stats.hits += 1;
          // Least recently used goes first: a response asked for moves to the end.
          this.cache.delete(key);
          this.cache.set(key, cached);
        } else {
          this.stats.misses += 1;
        }
        const hit = cached ?? this.fresh(this.unknown.get(key)) ?? await this.load(certId);
        if (hit === 'stale') return { der: ocspErrorResponse('tryLater') };
        if (hit && hit.nextUpdateMs > this.clock().getTime()) return { der: hit.der, cached: hit };
      }
      return await this.slowAnswer(request);
    } catch (err) {
      if (isHsmUnavailable(err) || err instanceof NoResponderError) return { der: ocspErrorResponse('tryLater') };
      this.logger.error({ err }, 'OCSP answer failed');
      return { der: ocspErrorResponse('internalError') };
    }
  }

  /**
   * Takes new pre-signed responses (this process signed them, or another
   * did): replaces the cached ones; a certificate not asked about yet is
   * read from the database on its first request (`load`).
   */
  accept(records: readonly OcspResponseRecord[], load = false): void {
    for (const record of records) {
      const known = this.cachedSerials.get(record.serial);
      // Not cached here: nothing to replace (the sync reads every row others wrote; this must cost nothing).
      if (!known && !load) continue;
      // The response cached already.
      if (known && record.thisUpdate && record.sha1 && known.thisUpdateMs === record.thisUpdate.getTime() && this.cache.has(known.keys[0]!)) continue;
      const keys = known?.keys ?? this.keysOf(record);
      if (!keys) continue;
      if (!record.sha1 || !record.sha256 || !record.thisUpdate || !record.nextUpdate) {
        for (const key of keys) this.cache.delete(key);
        if (known) known.thisUpdateMs = null;
        continue;
      }
      this.remember(this.cache, this.cacheEntries, keys[0]!, cachedResponse(record.sha1, record.thisUpdate, record.nextUpdate));
      this.remember(this.cache, this.cacheEntries, keys[1]!, cachedResponse(record.sha256, record.thisUpdate, record.nextUpdate));
      this.cachedSerials.delete(record.serial);
      this.cachedSerials.set(record.serial, { keys, thisUpdateMs: record.thisUpdate.getTime() });
      if (this.cachedSerials.size > this.cacheEntries / 2) this.cachedSerials.delete(this.cachedSerials.keys().next().value!);
    }
  }

  /** Forgets what revocations made stale in this process, before the new responses are signed. */
  forget(serials: readonly { serial: string; issuerId: number }[]): void {
    for (const { serial } of serials) {
      const known = this.cachedSerials.get(serial);
      if (!known) continue;
      for (const key of known.keys) this.cache.delete(key);
      known.thisUpdateMs = null;
    }
  }

  /** The cache keys of a certificate: its CertIDs as we write them, SHA-1 then SHA-256. */
  private keysOf(record: { serial: string; issuerId: number }): string[] | undefined {
    const ids = this.directory.get(record.issuerId);
    if (!ids) return undefined;
    const serial = Buffer.from(record.serial, 'hex');
    return CERT_ID_HASHES.map((hash) => this.signer.certId(ids, hash, serial).toString('latin1'));
  }

  get cachedEntries(): number {
    return this.cache.size;
  }

  /**
   * A CertID written as we write ours, not in memory yet: one read of the
   * certificate's pre-signed responses by serial (the first request for a
   * certificate in this process). 'stale' while a revocation awaits its new
   * responses; undefined when there are none (an unknown serial).
   */
  private async load(certId: Buffer): Promise<CachedResponse | 'stale' | undefined> {
    const named = this.directory.ownCertId(certId);
    if (!named) return undefined;
    const key = certId.toString('latin1');
    const absentUntil = this.absent.get(key);
    if (absentUntil !== undefined && absentUntil > Date.now()) return undefined;
    const presigned = await this.store.ocsp.find(named.serial, named.issuerId);
    if (!presigned) {
      // A serial nobody issued is asked for again and again by a scanner: not a query each time.
      this.rememberAbsent(key);
      return undefined;
    }
    if (!presigned.sha1) return 'stale';
    this.accept([presigned], true);
    return this.cache.get(certId.toString('latin1'));
  }

  private async slowAnswer(request: Buffer): Promise<Answer> {
    let parsed: OCSPRequest;
    try {
      parsed = AsnConvert.parse(request, OCSPRequest);
    } catch {
      return { der: ocspErrorResponse('malformedRequest') };
    }
    const requests = parsed.tbsRequest.requestList;
    if (requests.length === 0 || requests.length > MAX_CERT_IDS) return { der: ocspErrorResponse('malformedRequest') };
    // What the request names is checked before anything is spent: the parser takes any INTEGER, we take DER serials only.
    const asked: Array<{ certIdDer: Buffer; serial: string }> = [];
    let ids: IssuerCertIds | undefined;
    for (const { reqCert } of requests) {
      const serial = serialOfInteger(new Uint8Array(reqCert.serialNumber));
      if (serial === undefined) return { der: ocspErrorResponse('malformedRequest') };
      const hash = hashOfOid(reqCert.hashAlgorithm.algorithm);
      const named = hash && this.directory.find(hash, Buffer.from(reqCert.issuerNameHash.buffer), Buffer.from(reqCert.issuerKeyHash.buffer));
      // Not a CA we answer for (a stranger, the root), or several of them in one request: RFC 6960 2.3.
      if (!named || (ids && ids !== named)) return { der: ocspErrorResponse('unauthorized') };
      ids = named;
      asked.push({ certIdDer: Buffer.from(AsnConvert.serialize(reqCert)), serial });
    }
    const now = this.clock();
    // What reaches here is signed on the spot (a CertID of ours with a response was answered from memory or by load):
    // the budget is taken before any database read, so a flood costs neither the HSM nor the database.
    if (!this.takeToken(now)) return { der: ocspErrorResponse('tryLater') };
    const issuerId = ids!.issuer.id;
    const singles: Array<{ certIdDer: Buffer; status: CertStatus }> = [];
    for (const { certIdDer, serial } of asked) {
      const certificate = await this.store.certificates.byIssuerAndSerial(issuerId, serial);
      if (asked.length === 1 && certificate) {
        const presigned = await this.store.ocsp.find(serial, issuerId);
        if (!presigned?.sha1) return { der: ocspErrorResponse('tryLater') };
        this.accept([presigned], true);
        const hit = this.cache.get(certIdDer.toString('latin1'));
        if (hit && hit.nextUpdateMs > now.getTime()) return { der: hit.der, cached: hit };
      }
      singles.push({ certIdDer, status: certificate ? statusOf(certificate) : { status: 'unknown' } });
    }
    return this.signOnDemand(ids!, singles, now);
  }

  private fresh(entry: CachedResponse | undefined): CachedResponse | undefined {
    return entry && entry.nextUpdateMs > this.clock().getTime() ? entry : undefined;
  }

  private rememberAbsent(key: string): void {
    this.absent.delete(key);
    this.absent.set(key, Date.now() + ABSENT_MS);
    if (this.absent.size > ABSENT_ENTRIES) this.absent.delete(this.absent.keys().next().value!);
  }

  /** Several CertIDs, a CertID written differently from ours, or an unknown serial: signed now, if the budget allows. */
  private async signOnDemand(ids: IssuerCertIds, singles: Array<{ certIdDer: Buffer; status: CertStatus }>, now: Date): Promise<Answer> {
    const unknownKey = singles.length === 1 && singles[0]!.status.status === 'unknown' ? singles[0]!.certIdDer.toString('latin1') : undefined;
    const known = unknownKey ? this.unknown.get(unknownKey) : undefined;
    if (known && known.nextUpdateMs > now.getTime()) return { der: known.der, cached: known };
    if (!this.signer.canSign(ids.issuer.id)) return { der: ocspErrorResponse('tryLater') };
    const thisUpdate = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const nextUpdate = new Date(thisUpdate.getTime() + OCSP_VALIDITY_MS);
    const der = await this.signer.sign(ids, singles.map((s) => singleResponse(s.certIdDer, s.status, thisUpdate, nextUpdate)), thisUpdate);
    const cached = cachedResponse(der, thisUpdate, nextUpdate);
    if (unknownKey) this.remember(this.unknown, UNKNOWN_CACHE_ENTRIES, unknownKey, cached);
    return { der, cached };
  }

  private takeToken(now: Date): boolean {
    const elapsed = now.getTime() - this.refilledAt;
    if (elapsed > 0) {
      this.tokens = Math.min(ON_DEMAND_PER_SECOND, this.tokens + (elapsed * ON_DEMAND_PER_SECOND) / 1000);
      this.refilledAt = now.getTime();
    }
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Insertion-ordered maps: the oldest entry leaves first when one is full. */
  private remember(map: Map<string, CachedResponse>, limit: number, key: string, value: CachedResponse): void {
    map.delete(key);
    map.set(key, value);
    if (map.size > limit) map.delete(map.keys().next().value!);
  }
}

/** RFC 6960 A.1: GET /ocsp/<url-encoded standard base64 of the DER request>; what is not base64 decodes to nothing. */
function decodeGetRequest(encoded: string): Buffer {
  let text: string;
  try {
    text = decodeURIComponent(encoded);
  } catch {
    return Buffer.alloc(0);
  }
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return Buffer.alloc(0);
  return Buffer.from(text, 'base64');
}

const PROBLEMS: Record<number, [type: string, title: string]> = {
  405: [PROBLEM.methodNotAllowed, 'Method Not Allowed'],
  413: [PROBLEM.tooLarge, 'Content Too Large'],
  414: [PROBLEM.tooLarge, 'URI Too Long'],
  415: [PROBLEM.unsupportedMediaType, 'Unsupported Media Type'],
};

/** What is not an OCSP request at all gets an RFC 7807 problem; a bad OCSP request gets malformedRequest. */
function sendStatus(res: ServerResponse, status: number, detail: string): void {
  const [type, title] = PROBLEMS[status]!;
  const body = JSON.stringify({ type, title, status, detail });
  res.writeHead(status, { 'Content-Type': 'application/problem+json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
