import { connect } from 'node:net';
import { join } from 'node:path';
import type { TestServer } from '../support/api.ts';
import { httpsRequest, type ApiResponse } from '../support/https.ts';
import { rawConnection } from '../../store/test-access.ts';
import type { FuzzCase } from './cases.ts';

/** The tables a refused request must not add to (nonces are left out: asking for one is allowed). */
const WATCHED = ['devices', 'certificates', 'tokens', 'audit_events', 'audit_pending', 'models', 'device_classes', 'acme_accounts', 'acme_orders', 'support_grants', 'console_sessions', 'ocsp_responses', 'compromised_batches', 'ownership_transfers', 'model_firmware', 'firmware_releases'];
/** A case that takes longer than this is a hang. */
const CASE_LIMIT_MS = 15_000;

export async function tableCounts(server: TestServer): Promise<Record<string, number>> {
  const db = rawConnection(server.env.ctx.store);
  const counts: Record<string, number> = {};
  for (const table of WATCHED) counts[table] = Number((await db(table).count({ n: '*' }))[0]!.n);
  return counts;
}

export interface FuzzReport {
  cases: number;
  byStatus: Record<string, number>;
  failures: string[];
}

/**
 * Sends every case (HTTPS on the CA's listener, or plain HTTP for OCSP, CRLs
 * and CA certificates) from `concurrency` workers. A failure is a 5xx, a
 * 2xx for a case built to be refused (OCSP excepted: its errors are 200
 * with an OCSP status), no answer within the limit, or a dropped connection.
 */
export async function runFuzz(server: TestServer, cases: readonly FuzzCase[], tokens: Record<NonNullable<FuzzCase['auth']>, string>, concurrency = 8): Promise<FuzzReport> {
  const byStatus: Record<string, number> = {};
  const failures: string[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < cases.length; i = next++) {
      const c = cases[i]!;
      const headers: Record<string, string> = { ...(c.auth ? { authorization: `Bearer ${tokens[c.auth]}` } : {}), ...c.headers };
      for (const [name, value] of Object.entries(headers)) if (value === '') delete headers[name];
      let response: ApiResponse;
      const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${CASE_LIMIT_MS} ms`)), CASE_LIMIT_MS).unref());
      try {
        response = await Promise.race([httpsRequest(server.running.httpsPort, server.rootPem, c.method, c.path, headers, c.body), timer]);
      } catch (err) {
        failures.push(`${c.name} ${c.method} ${c.path.slice(0, 80)}: ${(err as Error).message}`);
        continue;
      }
      byStatus[response.status] = (byStatus[response.status] ?? 0) + 1;
      // OCSP errors are 200 with an OCSP status; OPTIONS lists a route's methods; signing out with no session is 204;
      // a batch answers 200 with each item's own result, and refusing every item is refusing the request.
      const harmless = (c.path === '/ocsp' && response.status === 200) || c.method === 'OPTIONS' || c.method === 'DELETE' || everyItemRefused(c.path, response);
      if (response.status >= 500 || (response.status < 400 && !harmless)) {
        failures.push(`${c.name} ${c.method} ${c.path.slice(0, 80)}: ${response.status} ${response.text.slice(0, 160)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { cases: cases.length, byStatus, failures };
}

/** Sends each line on its own admin-socket connection; each must end with an exit status frame, never a crash or a hang. */
export async function fuzzAdminSocket(dataDir: string, lines: readonly Buffer[]): Promise<string[]> {
  const failures: string[] = [];
  for (const [i, line] of lines.entries()) {
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(join(dataDir, 'admin.sock'));
      let text = '';
      const timer = setTimeout(() => { socket.destroy(); resolve('TIMEOUT'); }, CASE_LIMIT_MS);
      socket.on('data', (chunk) => (text += chunk));
      socket.on('close', () => { clearTimeout(timer); resolve(text); });
      socket.on('error', () => {});
      socket.end(line);
    });
    const last = answer.trim().split('\n').at(-1) ?? '';
    if (!/^\{"x":[1-9]\d*\}$/.test(last) && answer !== '') failures.push(`admin line #${i}: ${answer.slice(0, 120)}`);
  }
  return failures;
}

/** A batch answer (200 with `results`) in which every item was refused: nothing was done, as for a 4xx. */
function everyItemRefused(path: string, response: { status: number; text: string }): boolean {
  if (!path.endsWith('/batch') || response.status !== 200) return false;
  try {
    const { results } = JSON.parse(response.text) as { results?: Array<{ status?: unknown }> };
    return Array.isArray(results) && results.length > 0 && results.every((r) => typeof r.status === 'number' && r.status >= 400);
  } catch {
    return false;
  }
}
