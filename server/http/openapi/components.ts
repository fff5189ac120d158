import { PROBLEM } from '../problem.ts';
import { REVOCATION_REASON_NAMES } from '../../../registry/lifecycle/revocation.ts';
import { array, bool, closed, dateTime, int, open, str, type JsonObject } from './dsl.ts';

/** Identifier patterns of registry/identifiers.ts, as JSON Schema (ECMA-262) patterns. */
export const PATTERNS = {
  serial: '^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$',
  batch: '^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$',
  name: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$',
  model: '^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$',
  certificateSerial: '^(?:[0-9a-fA-F]{2}){1,32}$',
  sha256: '^[0-9a-f]{64}$',
  grantId: '^[0-9a-f]{24}$',
} as const;

/** A device as the operator API shows it (deviceView of server/http/routes/operator.ts). */
export const deviceProperties: Record<string, JsonObject> = {
  serial: { $ref: '#/components/schemas/Serial' },
  model: { $ref: '#/components/schemas/ModelName' },
  batch: { $ref: '#/components/schemas/Batch' },
  line: str({ description: 'The factory line that made it.' }),
  state: { $ref: '#/components/schemas/DeviceState' },
};

/** A support grant (grantView of registry/lifecycle/support-grants.ts). */
export const grantProperties: Record<string, JsonObject> = {
  id: str({ pattern: PATTERNS.grantId }),
  device: { $ref: '#/components/schemas/Serial' },
  vendor: str(),
  reason: str(),
  hours: int({ minimum: 1, maximum: 8 }),
  status: str({ enum: ['pending', 'approved', 'revoked'] }),
  requestedBy: str(),
  requestedAt: dateTime(),
  approvedBy: { type: ['string', 'null'] },
  windowStart: { anyOf: [dateTime(), { type: 'null' }] },
  windowEnd: { anyOf: [dateTime(), { type: 'null' }] },
  revokedBy: { type: ['string', 'null'] },
  revokedAt: { anyOf: [dateTime(), { type: 'null' }] },
};

/** Schemas several API groups share. */
export const sharedSchemas: Record<string, JsonObject> = {
  Problem: {
    type: 'object',
    description: 'An RFC 7807 problem document. `type` is one of the urn:devid-ca:problem: types; some problems add members of their own (for example the serials a refused request collided with).',
    properties: {
      type: str({ description: 'The problem type.', examples: Object.values(PROBLEM) }),
      title: str({ description: 'The HTTP status text.' }),
      status: int({ minimum: 400, maximum: 599 }),
      detail: str({ description: 'What was wrong, for a person; it names no internals.' }),
    },
    required: ['type', 'title', 'status', 'detail'],
  },
  Serial: str({ pattern: PATTERNS.serial, description: 'A device serial: 1-64 characters, a letter or digit, then letters, digits, "." or "-".' }),
  Batch: str({ pattern: PATTERNS.batch, description: 'A factory batch: the alphabet and length of a serial.' }),
  ModelName: str({ pattern: PATTERNS.model, description: 'A model name: 1-64 characters, a letter or digit, then letters, digits, ".", "_" or "-".' }),
  Name: str({ pattern: PATTERNS.name, description: 'A name (class, owner, vendor, principal): 1-128 characters, a letter or digit, then letters, digits, ".", "_", "@" or "-".' }),
  CertificateSerial: str({ pattern: '^(?:[0-9a-f]{2}){1,32}$', description: 'A certificate serial: the lowercase hex of its INTEGER.' }),
  Sha256: str({ pattern: PATTERNS.sha256, description: 'A SHA-256 in lowercase hex.' }),
  DeviceState: str({ enum: ['manufactured', 'active', 'suspended', 'quarantined', 'decommissioned'] }),
  RevocationReason: str({ enum: [...REVOCATION_REASON_NAMES], description: 'An RFC 5280 reason name (certificateHold is not offered: revocation is final).' }),
  CertificatePem: str({ pattern: '^-----BEGIN CERTIFICATE-----', description: 'A PEM certificate.' }),
  Device: closed(deviceProperties),
  BatchProgress: closed({
    batch: str({ description: 'The batch, or the scope key of a manufacturer withdrawal.' }),
    devices: int({ minimum: 0 }),
    certificates: int({ minimum: 0 }),
    finished: bool(),
  }),
  Checkpoint: closed({
    seq: int({ minimum: 0 }),
    head: str({ description: 'The hash of the chain head it signs.' }),
    at: dateTime(),
    key: str({ description: 'The audit key that signed it.' }),
    signature: str({ description: 'base64 DER ECDSA-Sig-Value over the RFC 8785 canonical JSON of the other fields.' }),
  }, undefined, { description: 'A signed checkpoint of the audit chain head.' }),
  SupportGrant: closed(grantProperties),
  OwnershipStatement: open({
    type: str({ const: 'devid-ca ownership statement' }),
    version: int({ const: 1 }),
    device: { $ref: '#/components/schemas/Serial' },
    birthCertificateSha256: str(),
    from: { type: ['string', 'null'] },
    to: str(),
    at: dateTime(),
    previous: { type: ['string', 'null'], description: 'SHA-256 of the previous statement\'s canonical JSON; null for the first.' },
    signer: array(str(), { description: 'The signing certificate, then its issuer (the handing CA\'s root), base64 DER.' }),
    signature: str({ description: 'ECDSA over the RFC 8785 canonical JSON of every other field, base64 DER.' }),
  }, undefined, { description: 'One link of a device\'s ownership chain across companies.' }),
};

const STATUS_TEXT: Record<number, string> = {
  400: 'The request is malformed: its body, a field, a path parameter or the query (problem type malformed, bad-csr or bad-public-key).',
  401: 'No valid bearer token or console session (WWW-Authenticate: Bearer).',
  403: 'The token\'s role or scope does not allow this; or a console-session request without its CSRF token, or from another origin.',
  404: 'No such resource.',
  405: 'The method is not allowed on this path (Allow names those that are).',
  409: 'The request conflicts with the resource\'s state (a racing request won, a state that forbids the change).',
  410: 'Gone for good: a model\'s firmware allowlist after its legacy cut-off (problem type gone).',
  413: 'The request body is larger than this endpoint accepts.',
  415: 'The body is not application/json, or its encoding or character set is not supported.',
  431: 'The request headers are larger than the server accepts (16 KiB); answered before routing, on any path.',
  500: 'An internal error; the event was logged and the answer says nothing of its cause.',
  503: 'The database or the HSM does not answer (Retry-After: 5).',
};

/** The problem document responses, one per status. */
export const problemResponses: Record<string, JsonObject> = Object.fromEntries(Object.entries(STATUS_TEXT).map(([status, description]) => [
  `Problem${status}`,
  { description, content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } },
]));

export const securitySchemes: Record<string, JsonObject> = {
  bearerToken: {
    type: 'http',
    scheme: 'bearer',
    description: 'An API token (`devid-ca token create`), of one role: factory, operator, auditor or vendor. The role each operation takes is in its security requirement.',
  },
  consoleSession: {
    type: 'apiKey',
    in: 'cookie',
    name: '__Host-devid-session',
    description: 'The operator console\'s session cookie (POST /console/v1/session), for operator and auditor tokens; 30 minutes.',
  },
  csrfToken: {
    type: 'apiKey',
    in: 'header',
    name: 'x-csrf-token',
    description: 'The console session\'s CSRF token: required with the session cookie on every request but GET and HEAD.',
  },
};
