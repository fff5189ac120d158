import { array, bool, closed, dateTime, header, int, nullable, pathParam, queryParam, record, ref, str, type ApiGroup, type JsonObject, type OperationSpec } from './dsl.ts';

const session = closed({ principal: str(), role: str({ enum: ['operator', 'auditor'] }), csrf: str({ description: 'Send it in x-csrf-token on every request but GET and HEAD.' }), expiresAt: dateTime() });
const breakdown = closed({ values: array(closed({ value: { type: ['string', 'null'] }, devices: int({ minimum: 0 }) })), other: int() });
const nullableTime = nullable(dateTime());
const page = (operationId: string, summary: string, content: Record<string, JsonObject | undefined>, parameters?: JsonObject[]): OperationSpec => ({
  tags: ['console'],
  operationId,
  summary,
  ...(parameters ? { parameters } : {}),
  responses: {
    200: { description: 'The file (ETag; If-None-Match answers 304).', content, headers: { ETag: header('The file\'s hash.'), 'Content-Security-Policy': header('Only this page\'s own files.') } },
    304: { description: 'Not modified.' },
  },
  problems: [],
});

export const consoleApi: ApiGroup = {
  tag: { name: 'console', description: 'The operator console: its page and files, the session that stands in for a token in the browser, and the read models its pages need. Its actions go to the operator and audit APIs under the session.' },
  schemas: {
    ConsoleSession: session,
    FleetOverview: closed({
      generatedAt: dateTime(),
      devices: int({ minimum: 0 }),
      byState: breakdown,
      byModel: breakdown,
      byClass: breakdown,
      byOwner: breakdown,
      rotation: closed({ devices: int({ minimum: 0 }), byReason: record(int({ minimum: 0 })) }),
      assurance: closed({ mediated: int({ minimum: 0 }), raised: int({ minimum: 0 }) }, ['mediated', 'raised'], { description: 'Devices whose newest live operational certificate is mediated by a gateway, and those raised to attested since.' }),
      signals: array(closed({ seq: int(), at: dateTime(), action: str(), device: { type: ['string', 'null'] }, reason: str() })),
      batches: array(closed({ batch: str(), devices: int({ minimum: 0 }), certificates: int({ minimum: 0 }), finished: bool(), reason: str(), requestedAt: dateTime() })),
    }),
    ConsoleFirmwareModels: closed({
      models: array(closed({ model: ref('ModelName'), proposed: int({ minimum: 0 }), approved: int({ minimum: 0 }), withdrawn: int({ minimum: 0 }), legacy: int({ minimum: 0 }) })),
    }),
    ConsoleFirmware: closed({
      model: ref('ModelName'),
      legacyUntil: nullableTime,
      legacyPassed: bool(),
      releases: array(closed({
        version: str(), digest: str(), size: { type: ['integer', 'null'] }, sequence: int({ minimum: 0 }), minSequence: { type: ['integer', 'null'] }, legacy: bool(),
        status: str({ enum: ['proposed', 'approved', 'withdrawn'] }), proposal: ref('Sha256'), proposedBy: str(), proposedAt: dateTime(),
        approvedBy: { type: ['string', 'null'] }, approvedAt: nullableTime, signer: { type: ['string', 'null'] }, manifestSha256: { type: ['string', 'null'] },
        withdrawnBy: { type: ['string', 'null'] }, withdrawnAt: nullableTime, withdrawReason: { type: ['string', 'null'] },
        devices: int({ minimum: 0, description: 'Devices whose newest certificate was issued on this release.' }),
      }), { description: 'Newest first.' }),
      otherDevices: int({ minimum: 0, description: 'Devices of the model whose newest certificate was issued on a release no longer listed.' }),
    }),
    ConsoleStatus: closed({
      generatedAt: dateTime(),
      you: closed({ principal: str(), role: str() }),
      audit: closed({
        events: int({ minimum: 0 }),
        headAt: nullableTime,
        checkpoint: nullable(closed({ seq: int(), at: dateTime() })),
        lastVerification: nullable(closed({ at: dateTime(), actor: str(), ok: bool(), events: int() }, ['at', 'actor'])),
      }),
      crls: array(closed({
        ca: str(), online: bool(), number: str(), thisUpdate: dateTime(), nextUpdate: dateTime(), entries: int({ minimum: 0 }), fresh: bool(),
      }, ['ca', 'online', 'fresh'])),
      ocsp: array(closed({ ca: str(), certificates: int({ minimum: 0 }), waiting: int({ minimum: 0 }), oldestThisUpdate: nullableTime, earliestNextUpdate: nullableTime })),
    }),
  },
  paths: {
    '/console': { get: page('consolePage', 'The console page', { 'text/html': str() }) },
    '/console/': { get: page('consolePageSlash', 'The console page', { 'text/html': str() }) },
    '/console/assets/{file}': {
      get: {
        ...page('consoleAsset', 'One of the console\'s files', { 'text/javascript': str(), 'text/css': str(), 'image/svg+xml': str() }, [pathParam('file', str({ pattern: '^[a-z-]+\\.(?:mjs|css|svg)$' }), 'The file name.')]),
        problems: [404],
      },
    },
    '/console/v1/session': {
      post: {
        tags: ['console'],
        operationId: 'openConsoleSession',
        summary: 'Exchange an operator or auditor token for a session cookie',
        body: { schema: closed({ token: str({ maxLength: 256 }) }), limit: '4kb' },
        responses: { 201: { description: 'Signed in: Set-Cookie __Host-devid-session (Secure, HttpOnly, SameSite=Strict).', schema: ref('ConsoleSession'), headers: { 'Set-Cookie': header('The session cookie.') } } },
        problems: [401, 403, 500, 503],
      },
      get: {
        tags: ['console'],
        security: [{ consoleSession: [] }],
        operationId: 'getConsoleSession',
        summary: 'The session of the cookie sent',
        responses: { 200: { description: 'The live session.', schema: ref('ConsoleSession') } },
        problems: [401, 500, 503],
      },
      delete: {
        tags: ['console'],
        security: [{ consoleSession: [], csrfToken: [] }, {}],
        operationId: 'closeConsoleSession',
        summary: 'Sign out: ends the session, if any, and clears the cookie',
        responses: { 204: { description: 'Signed out.', headers: { 'Set-Cookie': header('The cleared cookie.') } } },
        problems: [403, 500, 503],
      },
    },
    '/console/v1/fleet': {
      get: {
        tags: ['console'],
        roles: ['operator', 'auditor'],
        operationId: 'consoleFleet',
        summary: 'The fleet by state, model, class and owner; overdue rotation; recent clone signals; batch revocations under way',
        responses: { 200: { description: 'The overview.', schema: ref('FleetOverview') } },
        problems: [],
      },
    },
    '/console/v1/devices': {
      get: {
        tags: ['console'],
        roles: ['operator', 'auditor'],
        operationId: 'consoleSearchDevices',
        summary: 'Search devices, 100 at most',
        parameters: [
          queryParam('q', str({ pattern: '^[A-Za-z0-9.-]{0,64}$' }), 'The start of a device serial.'),
          queryParam('state', { anyOf: [ref('DeviceState'), str({ const: '' })] }, 'Only devices in this state.'),
          queryParam('model', { anyOf: [ref('ModelName'), str({ const: '' })] }, 'Only devices of this model.'),
          queryParam('owner', { anyOf: [ref('Name'), str({ const: '' })] }, 'Only devices of this owner.'),
        ],
        responses: {
          200: {
            description: 'The devices found; truncated when there may be more.',
            schema: closed({
              devices: array(closed({ serial: ref('Serial'), model: ref('ModelName'), batch: ref('Batch'), state: ref('DeviceState'), owner: { type: ['string', 'null'] }, class: { type: ['string', 'null'] }, updatedAt: dateTime() })),
              truncated: bool(),
            }),
          },
        },
        problems: [400],
      },
    },
    '/console/v1/firmware': {
      get: {
        tags: ['console'],
        roles: ['operator', 'auditor'],
        operationId: 'consoleFirmwareModels',
        summary: 'The models with firmware releases, with how many of each status',
        responses: { 200: { description: 'The models.', schema: ref('ConsoleFirmwareModels') } },
        problems: [],
      },
    },
    '/console/v1/firmware/{model}': {
      get: {
        tags: ['console'],
        roles: ['operator', 'auditor'],
        operationId: 'consoleFirmware',
        summary: 'A model\'s firmware page: its releases, approvals, withdrawals, and how many devices run each (an indexed count)',
        parameters: [pathParam('model', ref('ModelName'), 'The model name.')],
        responses: { 200: { description: 'The model\'s releases.', schema: ref('ConsoleFirmware') } },
        problems: [400, 404],
      },
    },
    '/console/v1/status': {
      get: {
        tags: ['console'],
        roles: ['operator', 'auditor'],
        operationId: 'consoleStatus',
        summary: 'The CA\'s state: the audit chain, CRLs and OCSP freshness',
        responses: { 200: { description: 'The status.', schema: ref('ConsoleStatus') } },
        problems: [],
      },
    },
  },
};
