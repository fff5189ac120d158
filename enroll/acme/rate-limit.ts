import { isIPv6 } from 'node:net';

/** Clients tracked at once; the oldest bucket leaves first (a flood of addresses forgets, it does not grow). */
const MAX_CLIENTS = 50_000;

/**
 * Per-client token buckets for what an ACME client may make the CA store
 * before it has proved anything: nonces handed out without a request
 * redeeming one, and new accounts. Keyed by address (an IPv6 client by its
 * /64, which one host usually holds whole). In memory, per process: several
 * processes each grant the rate, which still bounds the growth.
 */
export class AnonymousRateLimit {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    /** Tokens a client earns per second. */
    private readonly perSecond: number,
    /** Tokens a client may spend at once. */
    private readonly burst: number,
  ) {}

  /** Takes one token for the client; when none is left, the seconds until there is one. */
  take(address: string | undefined, nowMs: number): { ok: true } | { ok: false; retryAfterSeconds: number } {
    const key = clientKey(address);
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: nowMs };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((nowMs - bucket.at) / 1000) * this.perSecond);
    bucket.at = nowMs;
    this.buckets.delete(key);
    this.buckets.set(key, bucket);
    if (this.buckets.size > MAX_CLIENTS) this.buckets.delete(this.buckets.keys().next().value!);
    if (bucket.tokens < 1) return { ok: false, retryAfterSeconds: Math.ceil((1 - bucket.tokens) / this.perSecond) };
    bucket.tokens -= 1;
    return { ok: true };
  }
}

function clientKey(address: string | undefined): string {
  if (!address) return '?';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  if (!isIPv6(address)) return address;
  return expandIPv6(address).slice(0, 4).join(':');
}

/** The eight groups of an IPv6 address, `::` expanded. */
function expandIPv6(address: string): string[] {
  const [head, tail] = address.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : new Array<string>(8 - left.length - right.length).fill('0');
  return [...left, ...zeros, ...right].map((group) => group.toLowerCase().replace(/^0+(?=.)/, ''));
}
