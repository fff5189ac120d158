import { ANDROID_STATUS_LIST } from '../pki/attestation/android-key/status-list.ts';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { loadHierarchy, type Hierarchy } from '../ca/hierarchy.ts';
import { Metrics } from './metrics.ts';
import { startAdminSocket } from './admin-socket.ts';
import type { RunCli } from './cli/io.ts';
import { IssuanceService } from '../ca/issuance.ts';
import { AcmeFrontEnd } from '../enroll/acme/front-end.ts';
import { ACME_STATE_KEPT_MS, purgeAcmeState } from '../enroll/acme/housekeeping.ts';
import { AnonymousRateLimit } from '../enroll/acme/rate-limit.ts';
import { EstFrontEnd } from '../enroll/est/front-end.ts';
import { FactoryService } from '../enroll/factory.ts';
import { Publication } from '../publish/publication.ts';
import { configuredShards } from '../publish/crl-publisher.ts';
import { AuditCheckpoints } from '../registry/audit/audit-checkpoints.ts';
import { ManufacturerCrlQueue, pollManufacturerCrls } from '../registry/manufacturers/manufacturer-crl.ts';
import { RevocationService } from '../registry/lifecycle/revocation-service.ts';
import { ensureAuditKeyRecorded, loadAuditKey } from '../registry/audit/audit-key.ts';
import { openLogKey } from '../registry/tlog/log-key.ts';
import { TransparencyLog } from '../registry/tlog/transparency-log.ts';
import { WitnessSubmitter } from '../registry/tlog/witnesses.ts';
import { loopbackWarnings, type ListenAddress, type PublicIdentity } from './config.ts';
import type { Context } from './context.ts';
import { apiApp } from './http/api-app.ts';
import { answerClientErrors } from './http/client-errors.ts';
import { healthRoutes } from './http/health.ts';
import { publicationApp } from './http/publication-app.ts';
import { auditRoutes } from './http/routes/audit.ts';
import { consoleRoutes } from './http/routes/console.ts';
import { factoryRoutes } from './http/routes/factory.ts';
import { manufacturerRoutes } from './http/routes/manufacturers.ts';
import { operatorRoutes } from './http/routes/operator.ts';
import { firmwareReleaseRoutes } from './http/routes/firmware-releases.ts';
import { FirmwareReleaseSigner } from '../ca/firmware-release-signer.ts';
import { supportRoutes } from './http/routes/support.ts';
import { tlogAuditorRoutes, tlogPublicRoutes, type TlogState } from './http/routes/tlog.ts';
import { identityDrift, loadIdentity } from './identity.ts';
import { ensureServerCredentials, operatorCredentials } from './tls.ts';

/** How often the server checks whether its own certificate needs renewal. */
const RENEW_CHECK_MS = 6 * 60 * 60 * 1000;
/** Signed checkpoints of the audit chain head: hourly (docs/auditors/audit-log.md). */
const CHECKPOINT_EVERY_MS = 60 * 60 * 1000;
/** How often each server looks for audit events committed but not chained (a process killed in between). */
const CHAIN_EVERY_MS = 1000;
/** The Merkle log's tiles are extended and a checkpoint signed this often: within 10 s of new events (docs/auditors/audit-log.md). */
const TLOG_STEP_EVERY_MS = 2000;
/** How long a stop waits for a Merkle log step in flight. */
const STEP_STOP_WAIT_MS = 5000;
/** Expired ACME nonces are deleted this often. */
const NONCE_PURGE_EVERY_MS = 10 * 60 * 1000;
/** Bounds on slow or idle clients; 16 KiB of headers at most. */
const SERVER_OPTIONS = { headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000, maxHeaderSize: 16 * 1024 };

export interface RunningServer {
  hierarchy: Hierarchy;
  identity: PublicIdentity;
  httpsPort: number;
  httpPort: number;
  /** The port of DEVID_METRICS_LISTEN, when set. */
  metricsPort?: number;
  /** The Merkle audit log, or why it is disabled. */
  tlog: TlogState;
  /** The express apps of the two listeners (their routes are checked against the OpenAPI document). */
  apps: { api: Express; publication: Express };
  close(): Promise<void>;
}

function listen(server: HttpServer | HttpsServer, address: ListenAddress): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: HttpServer | HttpsServer): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

/** `devid-ca serve`: checks the hierarchy and the audit key against the token, then starts both listeners. */
export interface ServeOptions {
  /**
   * Which of `serve --workers N` this process is (server/workers.ts). Only
   * the first opens the admin socket and resumes unfinished batch
   * revocations; every worker serves requests and shares the background work
   * through the database's locks.
   */
  worker?: number;
  /** The CLI's command runner (server/cli/run.ts): the first process opens the admin socket for it. */
  adminCommands?: RunCli;
}

export async function serve(ctx: Context, options: ServeOptions = {}): Promise<RunningServer> {
  const first = (options.worker ?? 0) === 0;
  // Read when an android-key attestation first needs it, then hourly: a CA without Android devices never fetches it.
  ANDROID_STATUS_LIST.configure(ctx.config.androidStatusUrl);
  const identity = await loadIdentity(ctx.store);
  if (!identity) throw new Error('this database holds no initialised CA: run "devid-ca init" first');
  for (const warning of [...identityDrift(ctx.config, identity), ...loopbackWarnings(identity)]) ctx.logger.warn(warning);
  const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, ctx.store, { allowOfflineRoot: true });
  if (!hierarchy.root.online) ctx.logger.info('the root CA key is offline: serving with the intermediates only');
  for (const retired of hierarchy.issuers.filter((i) => !i.online && i.role !== 'root')) {
    ctx.logger.warn({ ca: retired.slug, keyId: retired.record.keyId.toString('hex') }, 'the key of a retired CA is not in the token: it cannot sign its CRL or OCSP');
  }
  await ensureAuditKeyRecorded(ctx.provider, ctx.crypto, ctx.store, ctx.audit, hierarchy, identity.httpBaseUrl, ctx.clock());
  const auditKey = await loadAuditKey(ctx.provider, ctx.store);
  const logKey = await openLogKey(ctx.provider, ctx.store, identity.httpBaseUrl);
  const tlog: TlogState = logKey.ok ? { log: new TransparencyLog(ctx.provider, logKey.logKey, ctx.clock) } : { disabled: logKey.reason };
  if (!logKey.ok) ctx.logger.warn({ reason: logKey.reason }, `the Merkle audit log (/log) is disabled: ${logKey.reason}`);
  const metrics = new Metrics();
  metrics.observe(ctx.audit, ctx.store, ctx.provider);
  const publication = new Publication(ctx.store, hierarchy, ctx, ctx.clock, ctx.logger, ctx.config.crl, identity.httpBaseUrl, ctx.config.ocspCacheEntries);
  publication.responder.onAnswer = (status) => metrics.ocspAnswered(status);
  metrics.gauges(ctx.store, hierarchy, publication, ctx.clock);
  const issuance = new IssuanceService(ctx.clock, publication.signer, (kind) => metrics.certificateIssued(kind), (issuer) => configuredShards(ctx.config.crl, issuer));
  const revocations = new RevocationService(ctx.store, ctx.audit, publication, ctx.clock);
  // The operator's certificate when DEVID_TLS_CERT is set (read again at each check: a replaced one is served), else one of our own.
  const serverCredentials = async () => ctx.config.tls
    ? operatorCredentials(ctx.config.tls, identity.publicHost, ctx.clock(), (message) => ctx.logger.warn(message))
    : ensureServerCredentials(ctx, issuance, hierarchy, identity);
  let credentials = await serverCredentials();

  const checkpoints = new AuditCheckpoints(auditKey.signer, auditKey.certificate, ctx.clock);
  const crlQueue = new ManufacturerCrlQueue();
  const factory = new FactoryService({ store: ctx.store, audit: ctx.audit, issuance, hierarchy, baseUrl: identity.httpBaseUrl, clock: ctx.clock });
  // The Merkle log's witnesses (DEVID_WITNESSES): named in /readyz and the metrics, never a reason for a 503.
  const witnesses = 'log' in tlog && ctx.config.witnesses ? new WitnessSubmitter(ctx.config.witnesses, ctx.clock) : undefined;
  const witnessHealth = async () => Object.fromEntries((await witnesses?.health(ctx.store) ?? []).map((w) => [w.witness, w.status]));
  if (witnesses) metrics.witnessGauges(() => witnesses.health(ctx.store));
  const health = healthRoutes(ctx.store, ctx.provider, () => publication.crlFreshness(), witnessHealth);
  const routers = [
    health,
    factoryRoutes(ctx.store, factory, ctx.logger),
    operatorRoutes({ store: ctx.store, audit: ctx.audit, revocations, published: publication, clock: ctx.clock, logger: ctx.logger }),
    manufacturerRoutes({
      store: ctx.store, audit: ctx.audit, revocations, published: publication, hierarchy, crlQueue, clock: ctx.clock, logger: ctx.logger,
      statementSigner: { signer: auditKey.signer, chain: [auditKey.certificate, Buffer.from(hierarchy.root.record.der)] },
    }),
    auditRoutes({ store: ctx.store, audit: ctx.audit, checkpoints, auditSigner: auditKey.signer, logger: ctx.logger }),
    tlogAuditorRoutes(ctx.store, ctx.audit, tlog, ctx.logger),
    consoleRoutes({ store: ctx.store, audit: ctx.audit, hierarchy, publication, clock: ctx.clock, logger: ctx.logger }),
    supportRoutes({ store: ctx.store, audit: ctx.audit, issuance, hierarchy, baseUrl: identity.httpBaseUrl, trustDomain: identity.trustDomain, clock: ctx.clock, logger: ctx.logger }),
    firmwareReleaseRoutes({
      store: ctx.store, audit: ctx.audit, signing: new FirmwareReleaseSigner(ctx.provider, identity.trustDomain),
      baseUrl: identity.httpBaseUrl, clock: ctx.clock, logger: ctx.logger,
    }),
  ];
  const app = apiApp(ctx.logger, routers);
  const acme = new AcmeFrontEnd({
    store: ctx.store, audit: ctx.audit, issuance, revocations, hierarchy, identity, clock: ctx.clock, logger: ctx.logger,
    anonymousLimit: new AnonymousRateLimit(ctx.config.acmeAnonymousPerSecond, ctx.config.acmeAnonymousPerSecond * 10),
    onProblem: (type) => metrics.acmeProblem(type),
    ...(ctx.config.predecessorOid ? { predecessorOid: ctx.config.predecessorOid } : {}),
    ...(ctx.config.assignerOid ? { assignerOid: ctx.config.assignerOid } : {}),
  });
  const est = new EstFrontEnd({
    store: ctx.store, audit: ctx.audit, issuance, hierarchy, identity, clock: ctx.clock, logger: ctx.logger,
    ...(ctx.config.predecessorOid ? { predecessorOid: ctx.config.predecessorOid } : {}),
  });
  // A client certificate is asked for, never required (EST devices send theirs; ACME, the APIs and the console send none), and
  // checked by the EST front end, not by node. The CA names only tell clients which certificate to offer: our CAs, intermediates
  // included, since a client that sends its leaf alone (Go's crypto/tls) offers it only when its issuer is named.
  const clientCertificates = { requestCert: true, rejectUnauthorized: false, ca: hierarchy.issuers.map((i) => new X509Certificate(Buffer.from(i.record.der)).toString()) };
  // ACME and EST on plain node:https (their own routing and error formats); everything else through express.
  const https = createHttpsServer({ key: credentials.key, cert: credentials.cert, minVersion: 'TLSv1.2', ...clientCertificates, ...SERVER_OPTIONS }, (req, res) => {
    metrics.request(req, res);
    const front = acme.handles(req.url) ? acme : est.handles(req.url) ? est : undefined;
    if (front) {
      front.handle(req, res).catch((err: unknown) => {
        ctx.logger.error({ err, path: req.url }, `${front === acme ? 'ACME' : 'EST'} answer failed`);
        res.destroy();
      });
    }
    else app(req, res);
  });
  await publication.start();
  const envelopes = async (model: string, version: string) => {
    const release = await ctx.store.firmwareReleases.find(model, version);
    return release?.envelope ?? undefined;
  };
  const publicationRoutes = publicationApp(hierarchy, publication, health, ctx.logger, ctx.clock, envelopes, [tlogPublicRoutes(ctx.store, tlog, ctx.logger)]);
  const ocsp = publication.responder;
  // OCSP on plain node:http (the hot path: a lookup and the bytes); CRLs and CA certificates through express.
  const http = createHttpServer({ ...SERVER_OPTIONS }, (req, res) => {
    metrics.request(req, res);
    if (req.url === '/metrics' && req.method === 'GET' && !ctx.config.metricsListen) {
      metrics.render(res).catch((err: unknown) => {
        ctx.logger.error({ err }, 'metrics failed');
        res.destroy();
      });
    }
    else if (ocsp.handles(req.url)) {
      ocsp.handle(req, res).catch((err: unknown) => {
        ctx.logger.error({ err, path: req.url }, 'OCSP answer failed');
        res.destroy();
      });
    }
    else publicationRoutes(req, res);
  });
  answerClientErrors(https);
  answerClientErrors(http);
  const httpsPort = await listen(https, ctx.config.listen);
  let httpPort: number;
  try {
    httpPort = await listen(http, ctx.config.httpListen);
  } catch (err) {
    publication.stop();
    await closeServer(https);
    throw err;
  }
  // /metrics alone on a listener of its own, for a monitoring network (DEVID_METRICS_LISTEN).
  const metricsServer = ctx.config.metricsListen ? createHttpServer({ ...SERVER_OPTIONS }, (req, res) => {
    if (req.url === '/metrics' && req.method === 'GET') {
      metrics.render(res).catch((err: unknown) => {
        ctx.logger.error({ err }, 'metrics failed');
        res.destroy();
      });
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('only /metrics here\n');
    }
  }) : undefined;
  const metricsPort = metricsServer ? await listen(metricsServer, ctx.config.metricsListen!) : undefined;
  // The CLI against this server (server/admin-socket.ts): with PGlite, the only way while it serves.
  const admin = first && options.adminCommands ? await startAdminSocket(ctx, ctx.logger, options.adminCommands, publication) : { close: async () => {} };
  // Batch revocations a stopped process left half done go on where they stopped.
  for (const batch of first ? await revocations.unfinished() : []) {
    ctx.logger.info({ batch }, 'resuming the revocation of a compromised batch');
    revocations.resume(batch).catch((err) => ctx.logger.error({ err, batch }, 'batch revocation stopped: it resumes at the next start or request'));
  }

  const renewal = setInterval(() => {
    serverCredentials()
      .then((next) => {
        if (next.cert === credentials.cert) return;
        credentials = next;
        https.setSecureContext({ key: next.key, cert: next.cert, ca: clientCertificates.ca });
      })
      .catch((err) => ctx.logger.error({ err }, 'server certificate renewal failed'));
  }, RENEW_CHECK_MS);
  renewal.unref();
  const checkpointTimer = setInterval(() => {
    // 90% of the interval: a timer a little early still signs; of several servers the first signs and the others find it fresh.
    checkpoints.createIfDue(ctx.store, CHECKPOINT_EVERY_MS * 0.9).catch((err) => ctx.logger.error({ err }, 'audit checkpoint failed'));
  }, CHECKPOINT_EVERY_MS);
  checkpointTimer.unref();
  // Pending audit events a killed process committed but did not chain: whoever sees them chains them.
  let chainFailing = false;
  const chainTimer = setInterval(() => {
    ctx.store.audit.anyPending()
      .then((pending) => (pending ? ctx.audit.chain(ctx.store) : undefined))
      .then(() => { chainFailing = false; })
      .catch((err) => { if (!chainFailing) ctx.logger.error({ err }, 'chaining pending audit events failed: they wait, committed, for the next try'); chainFailing = true; });
  }, CHAIN_EVERY_MS);
  chainTimer.unref();
  // The Merkle log follows the chain: every server tries, the log's lock lets one extend at a time, the others find nothing left.
  let stepping: Promise<void> | undefined;
  let witnessing: Promise<void> | undefined;
  const failingWitnesses = new Set<string>();
  let stepFailing = false;
  const tlogTimer = setInterval(() => {
    if (!('log' in tlog) || stepping) return;
    stepping = tlog.log.step(ctx.store)
      .then(() => {
        stepFailing = false;
        // The first worker asks the witnesses, beside the step: a slow witness never holds back the next checkpoint.
        if (!first || !witnesses || witnessing) return;
        witnessing = witnesses.submitAll(ctx.store)
          .then((asked) => {
            // Said once when a witness starts failing and once when it cosigns again, not at every step.
            for (const { witness, error } of asked) {
              if (error && !failingWitnesses.has(witness)) ctx.logger.warn({ witness, error }, 'a witness of the Merkle log did not cosign');
              if (!error && failingWitnesses.has(witness)) ctx.logger.info({ witness }, 'a witness of the Merkle log cosigns again');
              if (error) failingWitnesses.add(witness);
              else failingWitnesses.delete(witness);
            }
          })
          .catch((err) => ctx.logger.error({ err }, 'submitting the checkpoint to the witnesses failed'))
          .finally(() => { witnessing = undefined; });
      })
      .catch((err) => { if (!stepFailing) ctx.logger.error({ err }, 'extending the Merkle audit log failed: it tries again'); stepFailing = true; })
      .finally(() => { stepping = undefined; });
  }, TLOG_STEP_EVERY_MS);
  tlogTimer.unref();
  // Other manufacturers' CRLs from their URLs (docs/operators/manufacturers.md): the first worker reads them; a failure is shown on the manufacturer.
  // A poll slower than the interval is not joined by another one behind it in the queue.
  let polling = false;
  const manufacturerCrlTimer = setInterval(() => {
    if (!first || polling) return;
    polling = true;
    pollManufacturerCrls(ctx.store, ctx.audit, publication, crlQueue, ctx.clock, (manufacturer, err) => ctx.logger.warn({ err, manufacturer }, 'reading a manufacturer CRL failed'))
      .catch((err) => ctx.logger.error({ err }, 'polling manufacturer CRLs failed'))
      .finally(() => { polling = false; });
  }, ctx.config.manufacturerCrlPollMs);
  manufacturerCrlTimer.unref();
  const nonceTimer = setInterval(() => {
    purgeAcmeState(ctx.store, ctx.clock()).catch((err) => ctx.logger.error({ err }, 'purging expired ACME state failed'));
    // TPM challenges never redeemed are kept a day past their expiry, then go.
    ctx.store.tpmActivations.purgeExpired(new Date(ctx.clock().getTime() - ACME_STATE_KEPT_MS))
      .catch((err) => ctx.logger.error({ err }, 'purging expired TPM challenges failed'));
  }, NONCE_PURGE_EVERY_MS);
  nonceTimer.unref();

  ctx.logger.info({
    https: `${ctx.config.listen.host}:${httpsPort}`, http: `${ctx.config.httpListen.host}:${httpPort}`, publicHost: identity.publicHost,
    ...(metricsPort ? { metrics: `${ctx.config.metricsListen!.host}:${metricsPort}` } : {}),
  }, 'devid-ca serving');
  return {
    hierarchy,
    identity,
    httpsPort,
    httpPort,
    tlog,
    ...(metricsPort ? { metricsPort } : {}),
    apps: { api: app, publication: publicationRoutes },
    close: async () => {
      clearInterval(renewal);
      clearInterval(checkpointTimer);
      clearInterval(nonceTimer);
      clearInterval(chainTimer);
      clearInterval(tlogTimer);
      // A step in flight finishes first, but a stop never waits on it for long (it may wait on a lock or a database that went away).
      await Promise.race([Promise.all([stepping, witnessing]), new Promise((resolve) => setTimeout(resolve, STEP_STOP_WAIT_MS).unref())]);
      clearInterval(manufacturerCrlTimer);
      publication.stop();
      await Promise.all([closeServer(https), closeServer(http), admin.close(), ...(metricsServer ? [closeServer(metricsServer)] : [])]);
    },
  };
}
