import type { Logger } from 'pino';
import type { Hierarchy } from '../../ca/hierarchy.ts';
import type { IssuanceService } from '../../ca/issuance.ts';
import type { AuditLog } from '../../registry/audit/audit-log.ts';
import type { RevocationService } from '../../registry/lifecycle/revocation-service.ts';
import type { EnrollmentStore } from '../../store/subsets.ts';
import type { VerifiedJws } from './jws.ts';
import type { AnonymousRateLimit } from './rate-limit.ts';
import type { AcmeUrls } from './urls.ts';

/** What the ACME front end is built from; constructed once by `serve`. */
export interface AcmeDeps {
  store: EnrollmentStore;
  audit: AuditLog;
  issuance: IssuanceService;
  revocations: RevocationService;
  hierarchy: Hierarchy;
  /** The values recorded at init: rpIdHash is the SHA-256 of the public host; SPIFFE URIs use the trust domain. */
  identity: { publicHost: string; trustDomain: string; httpBaseUrl: string };
  predecessorOid?: string;
  /** DEVID_ASSIGNER_OID: the only assigner a permanent-identifier may name (draft-ietf-acme-device-attest-09 section 3); unset, none may. */
  assignerOid?: string;
  clock: () => Date;
  logger: Logger;
  /** What clients that proved nothing yet may make the CA store: nonces handed out and new accounts. */
  anonymousLimit: AnonymousRateLimit;
  /** Told the type of every problem answered (metrics). */
  onProblem?: (type: string) => void;
}

/** One ACME request, as a resource handler sees it. */
export interface AcmeCall {
  deps: AcmeDeps;
  urls: AcmeUrls;
  /** Route parameters (`id`, `serial`, `certId`). */
  params: Record<string, string>;
  /** The verified JWS of a POST. */
  jws?: VerifiedJws;
  now: Date;
}

/** What a resource answers; the front end adds Replay-Nonce, the index link and the content type. */
export interface AcmeReply {
  status: number;
  /** JSON, or raw text with its content type (a certificate chain). */
  body?: unknown;
  raw?: { text: string; contentType: string };
  location?: string;
  links?: Array<{ url: string; rel: string }>;
  headers?: Record<string, string>;
  /** The body is a problem document (application/problem+json). */
  problem?: boolean;
}

export type AcmeHandler = (call: AcmeCall) => Promise<AcmeReply>;

/** The account of a kid-signed request (verifyJws guarantees it). */
export function accountOf(call: AcmeCall) {
  const account = call.jws?.account;
  if (!account) throw new Error('this handler needs a kid-signed request');
  return account;
}
