import { httpsRequest, type ApiResponse } from './https.ts';
import { createToken } from '../../server/tokens.ts';
import { runCli } from '../../server/cli/run.ts';
import { serve, type RunningServer } from '../../server/serve.ts';
import { createTestEnvironment, type TestEnvironment } from './context.ts';
import type { DatabaseKind, TestDatabase } from './databases.ts';
import { initialise } from '../../server/ceremonies.ts';
import { declareModel } from '../../registry/catalogue/models.ts';

/** The model declared on every test server. */
export const TEST_MODEL = { hwType: '1.3.6.1.4.1.99999.1.2', manufacturer: 'Acme Devices' };

export type { ApiResponse };
export { checkAnswersAgainstOpenapi } from './openapi.ts';

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
  tokens: { operator: string; factory: string; factoryScoped: string; auditor: string };
  request(method: string, path: string, options?: RequestOptions): Promise<ApiResponse>;
  close(): Promise<void>;
}

/** A real server on loopback ports over a fresh token and database, with one token per role. */
export async function startTestServer(kind: DatabaseKind = 'pglite', extraEnv: Record<string, string> = {}, given?: TestDatabase): Promise<TestServer> {
  const env = await createTestEnvironment(kind, extraEnv, given);
  await initialise(env.ctx);
  const running = await serve(env.ctx, { adminCommands: runCli });
  const make = async (role: string, extra: Record<string, unknown> = {}) =>
    (await createToken(env.ctx.store, env.ctx.audit, { role, ...extra }, 'cli', new Date())).token;
  // The model most tests use; a factory token may only be scoped to declared models.
  await declareModel(env.ctx.store, env.ctx.audit, 'cli', 'thermo-2', TEST_MODEL, new Date());
  const tokens = {
    operator: await make('operator', { name: 'alice' }),
    factory: await make('factory', { line: 'line-1' }),
    factoryScoped: await make('factory', { line: 'line-2', models: ['thermo-2'] }),
    auditor: await make('auditor'),
  };
  const rootPem = running.hierarchy.root.certificate.toString('pem');
  const request = (method: string, path: string, options: RequestOptions = {}) => {
    const body = options.raw ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const headers: Record<string, string> = {};
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (body !== undefined) headers['content-type'] = options.contentType ?? 'application/json';
    return httpsRequest(running.httpsPort, rootPem, method, path, headers, body);
  };
  return {
    env, running, rootPem, tokens, request,
    close: async () => {
      await running.close();
      await env.cleanup();
    },
  };
}
