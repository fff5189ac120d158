import { randomBytes } from 'node:crypto';
import type { AcmeHandler } from './context.ts';

/** How long a nonce may wait for its request. */
export const NONCE_LIFETIME_MS = 60 * 60 * 1000;

/** 128 random bits (RFC 8555 6.5.1 asks for enough entropy that nonces are not guessable). */
export function newNonceValue(): string {
  return randomBytes(16).toString('base64url');
}

/** HEAD (200) and GET (204) /acme/new-nonce (RFC 8555 7.2): the front end adds the Replay-Nonce. */
export const newNonce: AcmeHandler = async () => ({ status: 200, headers: { 'Cache-Control': 'no-store' } });
export const newNonceGet: AcmeHandler = async () => ({ status: 204, headers: { 'Cache-Control': 'no-store' } });
