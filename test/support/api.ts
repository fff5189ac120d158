import { request as httpsRequest } from 'node:https';
import { createToken } from '../../server/tokens.ts';
import { serve, type RunningServer } from '../../server/serve.ts';
import { createTestEnvironment, type TestEnvironment } from './context.ts';
import type { DatabaseKind } from './databases.ts';
import { initialise } from '../../server/ceremonies.ts';
import { declareModel } from '../../registry/models.ts';

/** The model declared on every test server. */
export const TEST_MODEL = { hwType: '1.3.6.1.4.1.99999.1.2', manufacturer: 'Acme Devices' };

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface RequestOptions {
  token?: string;
  body?: unknown;
  /** Sent as it is, instead of JSON.stringify(body). */
  raw?: string | Buffer;
  contentType?: string;
}

export interface TestServer {
  env: TestEnvironment;
  running: RunningServer;
  rootPem: string;
  tokens: { operator: string; operator2: string; factory: string; factoryScoped: string; auditor: string; vendor: string };
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  close(): Promise<void>;
}

/** A real server on loopback ports over a fresh token and database, with one token per role. */
export async function startTestServer(kind: DatabaseKind = 'pglite'): Promise<TestServer> {
  const env = await createTestEnvironment(kind);
  await initialise(env.ctx);
  const running = await serve(env.ctx);
  const make = async (role: string, extra: Record<string, unknown> = {}) =>
    (await createToken(env.ctx.store, env.ctx.audit, { role, ...extra }, 'cli', new Date())).token;
  // The model most tests use; a factory token may only be scoped to declared models.
  await declareModel(env.ctx.store, env.ctx.audit, 'cli', 'thermo-2', TEST_MODEL, new Date());
  const tokens = {
    operator: await make('operator', { name: 'alice' }),
    operator2: await make('operator', { name: 'bob' }),
    factory: await make('factory', { line: 'line-1' }),
    factoryScoped: await make('factory', { line: 'line-2', models: ['thermo-2'] }),
    auditor: await make('auditor'),
    vendor: await make('vendor', { vendor: 'acme-support' }),
  };
  const rootPem = running.hierarchy.root.certificate.toString('pem');
  const request = (method: string, path: string, options: RequestOptions = {}) =>
    new Promise<ApiResponse>((resolve, reject) => {
      const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
      const headers: Record<string, string> = {};
      if (options.token) headers.authorization = `Bearer ${options.token}`;
      if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
      const req = httpsRequest({ host: '127.0.0.1', servername: 'ca.devid.test', port: running.httpsPort, method, path, headers, ca: rootPem }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode!, headers: res.headers, text, json });
        });
      });
      req.on('error', reject);
      if (body !== undefined) req.write(body);
      req.end();
    });
  return {
    env, running, rootPem, tokens, request,
    close: async () => {
      await running.close();
      await env.cleanup();
    },
  };
}
