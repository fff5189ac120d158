import type { IncomingMessage, ServerResponse } from 'node:http';
import type { WitnessHealth } from '../registry/tlog/witnesses.ts';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Hierarchy } from '../ca/hierarchy.ts';
import type { KeyProvider } from '../hsm/provider.ts';
import type { Publication } from '../publish/publication.ts';
import type { AuditLog } from '../registry/audit/audit-log.ts';
import type { MetricsStore } from '../store/subsets.ts';

/** Paths with their variable parts named, so a label has few values (an id per request would not). */
// Every alternative is a fixed word: no label value comes from what a client chose to send.
const ROUTES: Array<[RegExp, string]> = [
  [/^\/acme\/(acct|order|authz|chall|cert)\/[^/]+(\/(?:orders|finalize))?$/, '/acme/$1/:id$2'],
  [/^\/acme\/renewal-info\/.+$/, '/acme/renewal-info/:certId'],
  [/^\/ocsp\/.+$/, '/ocsp/:request'],
  [/^\/crl\/[^/]+$/, '/crl/:ca'],
  [/^\/crl\/[^/]+\/[^/]+$/, '/crl/:ca/:shard'],
  [/^\/ca\/[^/]+$/, '/ca/:ca'],
  [/^\/operator\/v1\/(devices|certificates|batches|models|device-classes|support-grants)\/[^/]+(\/(?:revoke|revocation|suspend|resume|reprovision|decommission|transfer|class|support-grants|firmware|approve))?$/, '/operator/v1/$1/:id$2'],
  [/^\/audit\/v1\/devices\/[^/]+\/history$/, '/audit/v1/devices/:serial/history'],
  [/^\/support\/v1\/grants\/[^/]+\/certificate$/, '/support/v1/grants/:id/certificate'],
];
const FIXED = new Set([
  '/acme/directory', '/acme/new-nonce', '/acme/new-account', '/acme/new-order', '/acme/revoke-cert', '/acme/key-change',
  '/ocsp', '/healthz', '/readyz', '/metrics', '/factory/v1/birth-certificates', '/factory/v1/birth-certificates/batch',
  '/operator/v1/devices', '/operator/v1/reports/rotation', '/audit/v1/verify', '/audit/v1/checkpoints', '/audit/v1/export',
]);

export function routeOf(url: string | undefined): string {
  const path = (url ?? '').split('?')[0]!;
  for (const [pattern, name] of ROUTES) if (pattern.test(path)) return path.replace(pattern, name);
  return FIXED.has(path) ? path : 'other';
}

/**
 * Prometheus metrics of one server (its own registry): requests, certificates
 * issued, audited actions (enrollment outcomes, revocations, clone signals),
 * ACME problems by type, OCSP answers by response status, HSM and database
 * latency and errors; and, read when scraped, each CA's CRL age, the audit
 * chain's length and the age of its latest checkpoint.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly requests: Histogram<'route' | 'method' | 'status'>;
  private readonly issued: Counter<'kind'>;
  private readonly actions: Counter<'action'>;
  private readonly acmeProblems: Counter<'type'>;
  private readonly ocsp: Counter<'status'>;
  private readonly hsm: Histogram<'result'>;
  private readonly database: Histogram<'result'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'devid_process_' });
    const registers = [this.registry];
    this.requests = new Histogram({ name: 'devid_http_request_duration_seconds', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers });
    this.issued = new Counter({ name: 'devid_certificates_issued_total', help: 'Certificates signed, by kind', labelNames: ['kind'], registers });
    this.actions = new Counter({ name: 'devid_audit_events_total', help: 'Audited actions committed, by action (enrollments, refusals, revocations, clone signals, lifecycle)', labelNames: ['action'], registers });
    this.acmeProblems = new Counter({ name: 'devid_acme_problems_total', help: 'ACME requests refused, by problem type', labelNames: ['type'], registers });
    this.ocsp = new Counter({ name: 'devid_ocsp_responses_total', help: 'OCSP answers, by OCSPResponseStatus', labelNames: ['status'], registers });
    this.hsm = new Histogram({ name: 'devid_hsm_sign_duration_seconds', help: 'HSM signatures, by result', labelNames: ['result'], buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1], registers });
    this.database = new Histogram({ name: 'devid_database_query_duration_seconds', help: 'Database statements, by result', labelNames: ['result'], buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5], registers });
  }

  /** Times a request from its first byte to the end of its answer. */
  request(req: IncomingMessage, res: ServerResponse): void {
    const end = this.requests.startTimer({ route: routeOf(req.url), method: req.method ?? 'OTHER' });
    res.once('finish', () => end({ status: String(res.statusCode) }));
  }

  certificateIssued(kind: string): void {
    this.issued.inc({ kind });
  }

  acmeProblem(type: string): void {
    this.acmeProblems.inc({ type });
  }

  ocspAnswered(status: string): void {
    this.ocsp.inc({ status });
  }

  /** Wires the parts that report to it: the audit log, the database and the HSM provider. */
  observe(audit: AuditLog, store: { observeQueries(listener: (seconds: number, failed: boolean) => void): void }, provider: KeyProvider): void {
    audit.onCommitted((actions) => { for (const action of actions) this.actions.inc({ action }); });
    store.observeQueries((seconds, failed) => this.database.observe({ result: failed ? 'error' : 'ok' }, seconds));
    const sign = provider.sign.bind(provider);
    provider.sign = async (key, data) => {
      const end = this.hsm.startTimer();
      try {
        const signature = await sign(key, data);
        end({ result: 'ok' });
        return signature;
      } catch (err) {
        end({ result: 'error' });
        throw err;
      }
    };
  }

  /** The values read at each scrape. */
  /** The Merkle log's witnesses: whether each cosigns, and the largest size it cosigned (a witness that stopped is an alert, never a 503). */
  witnessGauges(health: () => Promise<WitnessHealth[]>): void {
    const registers = [this.registry];
    let last: Promise<WitnessHealth[]> | undefined;
    // Both gauges of one scrape read the database once.
    const read = () => (last ??= health().finally(() => setTimeout(() => { last = undefined; }, 1000).unref()));
    new Gauge({
      name: 'devid_tlog_witness_up', help: 'Whether each configured witness of the Merkle log cosigns its checkpoints (1) or is failing or behind (0)', labelNames: ['witness'], registers,
      async collect() {
        this.reset();
        for (const w of await read()) this.set({ witness: w.witness }, w.ok ? 1 : 0);
      },
    });
    new Gauge({
      name: 'devid_tlog_witness_cosigned_size', help: 'The largest checkpoint size each configured witness cosigned', labelNames: ['witness'], registers,
      async collect() {
        this.reset();
        for (const w of await read()) this.set({ witness: w.witness }, w.cosignedSize);
      },
    });
  }

  gauges(store: MetricsStore, hierarchy: Hierarchy, publication: Pick<Publication, 'crl' | 'responder'>, clock: () => Date): void {
    const registers = [this.registry];
    const crlGauge = (name: string, help: string, seconds: (crl: { thisUpdate: Date; nextUpdate: Date }, now: number) => number) => new Gauge({
      name, help, labelNames: ['ca'], registers,
      collect() {
        this.reset();
        const now = clock().getTime();
        for (const issuer of hierarchy.issuers) {
          const crl = publication.crl(issuer.slug);
          if (crl) this.set({ ca: issuer.slug }, seconds(crl.record, now));
        }
      },
    });
    crlGauge('devid_crl_age_seconds', 'Seconds since the thisUpdate of the CRL served for each CA', (crl, now) => (now - crl.thisUpdate.getTime()) / 1000);
    crlGauge('devid_crl_seconds_to_next_update', 'Seconds until the nextUpdate of the CRL served for each CA', (crl, now) => (crl.nextUpdate.getTime() - now) / 1000);
    // Other manufacturers' CRLs: a stale one refuses their devices' attestations (fail closed), so it is worth an alert.
    new Gauge({
      name: 'devid_manufacturer_crl_seconds_to_next_update', help: 'Seconds until the nextUpdate of each active manufacturer\'s CRL in force (negative: stale)', labelNames: ['manufacturer'], registers,
      async collect() {
        this.reset();
        const now = clock().getTime();
        for (const m of await store.manufacturers.all()) {
          if (m.status === 'active' && m.crl.nextUpdate) this.set({ manufacturer: m.id }, (m.crl.nextUpdate.getTime() - now) / 1000);
        }
      },
    });
    const responder = publication.responder;
    new Counter({
      name: 'devid_ocsp_cache_hits_total', help: 'OCSP requests of one CertID answered from the in-memory cache', registers,
      collect() {
        this.reset();
        this.inc(responder.stats.hits);
      },
    });
    new Counter({
      name: 'devid_ocsp_cache_misses_total', help: 'OCSP requests of one CertID not in the in-memory cache (read from the database, or signed on the spot)', registers,
      collect() {
        this.reset();
        this.inc(responder.stats.misses);
      },
    });
    new Gauge({
      name: 'devid_ocsp_cache_entries', help: 'Pre-signed OCSP responses held in memory', registers,
      collect() {
        this.set(responder.cachedEntries);
      },
    });
    new Gauge({
      name: 'devid_audit_chain_length', help: 'Events in the audit chain', registers,
      async collect() {
        this.set((await store.audit.head())?.seq ?? 0);
      },
    });
    // The Merkle log: how far its signed checkpoint covers the chain, and how old it is (a witness or a relying party reads only checkpoints).
    new Gauge({
      name: 'devid_tlog_checkpoint_size', help: 'Entries covered by the latest signed checkpoint of the Merkle audit log', registers,
      async collect() {
        this.set((await store.tlog.latestCheckpoint())?.size ?? 0);
      },
    });
    new Gauge({
      name: 'devid_tlog_checkpoint_age_seconds', help: 'Seconds since the latest checkpoint of the Merkle audit log was signed', registers,
      async collect() {
        const latest = await store.tlog.latestCheckpoint();
        if (latest) this.set((clock().getTime() - latest.signedAt.getTime()) / 1000);
      },
    });
    new Gauge({
      name: 'devid_audit_checkpoint_age_seconds', help: 'Seconds since the latest signed checkpoint', registers,
      async collect() {
        const latest = await store.checkpoints.latest();
        if (latest) this.set((clock().getTime() - Date.parse((JSON.parse(latest.canonical) as { at: string }).at)) / 1000);
      },
    });
  }

  async render(res: ServerResponse): Promise<void> {
    const body = await this.registry.metrics();
    res.writeHead(200, { 'Content-Type': this.registry.contentType, 'Cache-Control': 'no-store' });
    res.end(body);
  }
}
