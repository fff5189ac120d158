import type { IncomingMessage } from 'node:http';
import { sha256Hex } from '../../ca/digest.ts';
import { readBody } from '../../platform/read-body.ts';
import { SERIAL_PATTERN } from '../../registry/identifiers.ts';
import { issueGatewayNonce } from '../../registry/enrollment/relayed-attestation.ts';
import type { EstDeps } from './deps.ts';
import { EstError, domainEstError } from './errors.ts';

/** {"serial": "<64 characters at most>"} and some white space. */
const BODY_LIMIT = 1024;

/**
 * POST /.well-known/est/<label>/nonce {"serial"} (draft-ietf-lamps-attestation-freshness,
 * docs/device-makers/est.md): a gateway, authenticated by its TLS client
 * certificate (its newest operational certificate), asks for a fresh nonce
 * for a device behind it. The answer is {"nonce", "expiry"}: the device
 * signs SHA-256(nonce) in place of SHA-256(keyAuthorization), the gateway
 * sends the nonce back as the CSR's challengePassword.
 */
export async function gatewayNonce(deps: EstDeps, req: IncomingMessage, client: Buffer, label: string | undefined): Promise<string> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/json') throw new EstError(415, 'a nonce request is application/json: {"serial": "<device serial>"}');
  if ((req.headers['content-encoding'] ?? 'identity') !== 'identity') throw new EstError(415, 'EST requests are not content-encoded');
  const serial = serialOf(await readBody(req, BODY_LIMIT));
  const presented = await deps.store.certificates.bySha256(sha256Hex(client));
  if (!presented?.deviceSerial || presented.kind !== 'operational') throw new EstError(403, 'a nonce is for a gateway, authenticated by its newest operational certificate');
  const outcome = await issueGatewayNonce(deps, { gateway: presented, serial, now: deps.clock(), ...(label !== undefined ? { className: label } : {}) });
  if (!outcome.ok) throw domainEstError(outcome.error);
  return JSON.stringify({ nonce: outcome.nonce, expiry: outcome.expires.toISOString() });
}

function serialOf(body: Buffer): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch {
    throw new EstError(400, 'the body must be JSON: {"serial": "<device serial>"}');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed) || Object.keys(parsed).length !== 1 || !Object.hasOwn(parsed, 'serial')) {
    throw new EstError(400, 'the body must be {"serial": "<device serial>"} and nothing else');
  }
  const { serial } = parsed as { serial: unknown };
  if (typeof serial !== 'string' || !SERIAL_PATTERN.test(serial)) throw new EstError(400, 'serial must be a device serial: 1-64 letters, digits, "." or "-"');
  return serial;
}
