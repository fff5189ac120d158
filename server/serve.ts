import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { loadHierarchy, type Hierarchy } from '../ca/hierarchy.ts';
import { FactoryService } from '../enroll/factory.ts';
import { AuditCheckpoints } from '../registry/audit-checkpoints.ts';
import { apiApp } from './api-app.ts';
import { loopbackWarnings, type ListenAddress, type PublicIdentity } from './config.ts';
import type { Context } from './context.ts';
import { identityDrift, loadIdentity } from './identity.ts';
import { publicationApp } from './publication-app.ts';
import { auditRoutes } from './routes/audit.ts';
import { factoryRoutes } from './routes/factory.ts';
import { operatorRoutes } from './routes/operator.ts';
import { ensureServerCredentials } from './tls.ts';

/** How often the server checks whether its own certificate needs renewal. */
const RENEW_CHECK_MS = 6 * 60 * 60 * 1000;
/** Signed checkpoints of the audit chain head: hourly (SPEC section 7). */
const CHECKPOINT_EVERY_MS = 60 * 60 * 1000;
/** Bounds on slow or idle clients. */
const TIMEOUTS = { headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000 };

export interface RunningServer {
  hierarchy: Hierarchy;
  identity: PublicIdentity;
  httpsPort: number;
  httpPort: number;
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

/** `devid-ca serve`: checks the hierarchy against the token, then starts both listeners. */
export async function serve(ctx: Context): Promise<RunningServer> {
  const identity = await loadIdentity(ctx.store);
  if (!identity) throw new Error('this database holds no initialised CA: run "devid-ca init" first');
  for (const warning of [...identityDrift(ctx.config, identity), ...loopbackWarnings(identity)]) ctx.logger.warn(warning);
  const hierarchy = await loadHierarchy(ctx.provider, ctx.crypto, ctx.store, { allowOfflineRoot: true });
  if (!hierarchy.root.online) ctx.logger.info('the root CA key is offline: serving with the intermediates only');
  let credentials = await ensureServerCredentials(ctx, hierarchy, identity);

  const checkpoints = new AuditCheckpoints(ctx.provider, ctx.clock);
  await checkpoints.ensureKey(ctx.store);
  const factory = new FactoryService({ store: ctx.store, audit: ctx.audit, hierarchy, crypto: ctx.crypto, baseUrl: identity.httpBaseUrl, clock: ctx.clock });
  const routers = [
    factoryRoutes(ctx.store, factory, ctx.logger),
    operatorRoutes(ctx.store, ctx.audit, ctx.clock),
    auditRoutes({ store: ctx.store, audit: ctx.audit, provider: ctx.provider, checkpoints }),
  ];
  const https = createHttpsServer({ key: credentials.key, cert: credentials.cert, minVersion: 'TLSv1.2', ...TIMEOUTS }, apiApp(ctx.logger, routers));
  const http = createHttpServer({ ...TIMEOUTS }, publicationApp(hierarchy, ctx.logger));
  const httpsPort = await listen(https, ctx.config.listen);
  let httpPort: number;
  try {
    httpPort = await listen(http, ctx.config.httpListen);
  } catch (err) {
    await closeServer(https);
    throw err;
  }

  const renewal = setInterval(() => {
    ensureServerCredentials(ctx, hierarchy, identity)
      .then((next) => {
        if (next.cert === credentials.cert) return;
        credentials = next;
        https.setSecureContext({ key: next.key, cert: next.cert });
      })
      .catch((err) => ctx.logger.error({ err }, 'server certificate renewal failed'));
  }, RENEW_CHECK_MS);
  renewal.unref();
  const checkpointTimer = setInterval(() => {
    checkpoints.create(ctx.store).catch((err) => ctx.logger.error({ err }, 'audit checkpoint failed'));
  }, CHECKPOINT_EVERY_MS);
  checkpointTimer.unref();

  ctx.logger.info({ https: `${ctx.config.listen.host}:${httpsPort}`, http: `${ctx.config.httpListen.host}:${httpPort}`, publicHost: identity.publicHost }, 'devid-ca serving');
  return {
    hierarchy,
    identity,
    httpsPort,
    httpPort,
    close: async () => {
      clearInterval(renewal);
      clearInterval(checkpointTimer);
      await Promise.all([closeServer(https), closeServer(http)]);
    },
  };
}
