import { startTestServer, type TestServer } from '../support/api.ts';
import { makeDeviceKey } from '../support/device.ts';
import { createToken } from '../../server/tokens.ts';
import type { FuzzCase, FuzzTargets } from './cases.ts';

export interface FuzzServer {
  server: TestServer;
  targets: FuzzTargets;
  tokens: Record<NonNullable<FuzzCase['auth']>, string>;
}

/** A test server with one device and its birth certificate, and a token of every role. */
export async function startFuzzServer(): Promise<FuzzServer> {
  const server = await startTestServer('pglite');
  const born = await server.request('POST', '/factory/v1/birth-certificates', { token: server.tokens.factory, body: { serial: 'FUZZ-1', model: 'thermo-2', batch: 'fz', csr: (await makeDeviceKey()).csrPem } });
  if (born.status !== 201) throw new Error(`fuzz set-up: ${born.text}`);
  const vendor = (await createToken(server.env.ctx.store, server.env.ctx.audit, { role: 'vendor', vendor: 'fuzz-vendor' }, 'cli', new Date())).token;
  return {
    server,
    targets: { serial: 'FUZZ-1', certificateSerial: born.json.certificateSerial },
    tokens: { factory: server.tokens.factory, operator: server.tokens.operator, auditor: server.tokens.auditor, vendor },
  };
}
