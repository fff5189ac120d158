import { httpsRequest, type ApiResponse } from './https.ts';
import { createToken } from '../../server/tokens.ts';
import { serve, type RunningServer } from '../../server/serve.ts';
import { createTestEnvironment, type TestEnvironment } from './context.ts';
import type { DatabaseKind, TestDatabase } from './databases.ts';
import { initialise } from '../../server/ceremonies.ts';
import { declareModel } from '../../registry/models.ts';
import { answerMismatches } from './openapi.ts';

/** The model declared on every test server. */
export const TEST_MODEL = { hwType: '1.3.6.1.4.1.99999.1.2', manufacturer: 'Acme Devices' };

export type { ApiResponse };

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

/** Suites that check every answer against the OpenAPI document (checkAnswersAgainstOpenapi). */
let checking = 0;

/**
 * From here to the end of the enclosing describe, every answer to
 * TestServer.request must be one the OpenAPI document describes (status,
 * media type, JSON body against its schema), or the request throws: the
 * document is held to what the server really says.
 */
export function checkAnswersAgainstOpenapi(): void {
  before(() => { checking++; });
  after(() => { checking--; });
}

function checkAnswer(method: string, path: string, answer: ApiResponse): ApiResponse {
  if (checking === 0) return answer;
  const mismatches = answerMismatches(method, path, answer);
  if (mismatches.length > 0) throw new Error(`the answer is not the one the OpenAPI document describes:\n  ${mismatches.join('\n  ')}\n  body: ${answer.text.slice(0, 600)}`);
  return answer;
}

/** A real server on loopback ports over a fresh token and database, with one token per role. */
export async function startTestServer(kind: DatabaseKind = 'pglite', extraEnv: Record<string, string> = {}, given?: TestDatabase): Promise<TestServer> {
  const env = await createTestEnvironment(kind, extraEnv, given);
  await initialise(env.ctx);
  const running = await serve(env.ctx);
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
    return httpsRequest(running.httpsPort, rootPem, method, path, headers, body).then((answer) => checkAnswer(method, path, answer));
  };
  return {
    env, running, rootPem, tokens, request,
    close: async () => {
      await running.close();
      await env.cleanup();
    },
  };
}
