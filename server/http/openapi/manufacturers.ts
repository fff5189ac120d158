import { array, bool, closed, dateTime, header, int, nullable, open, pathParam, record, ref, str, text, type ApiGroup, type JsonObject } from './dsl.ts';

const idParam = pathParam('id', str({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$' }), 'The manufacturer id (not "self": the built-in factory is read-only).');
const readIdParam = pathParam('id', str({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$' }), 'The manufacturer id; "self" is this CA\'s own factory.');
const serialParam = pathParam('serial', ref('Serial'), 'The device serial.');
const tags = ['manufacturers'];
const role = { tags, roles: ['operator'] };

const certificateView = closed({ subject: str(), sha256: ref('Sha256'), notAfter: dateTime(), pem: ref('CertificatePem') });
const crlView = nullable({ oneOf: [closed({ url: str({ format: 'uri' }) }), closed({ pem: str({ const: 'uploaded' }), sha256: ref('Sha256') })] });
const config = closed({ certificates: array(ref('ManufacturerCertificate')), models: array(ref('ModelName')), crl: ref('CrlSourceView') });
const nullableTime = nullable(dateTime());

const manufacturerProperties: Record<string, JsonObject> = {
  id: str(),
  status: str({ enum: ['pending', 'active', 'withdrawn'] }),
  active: nullable(config),
  retiredCertificates: array(ref('Sha256'), { description: 'Certificates no longer trusted under this id.' }),
  pending: nullable(closed({
    ...config.properties as Record<string, JsonObject>,
    diff: closed({
      certificates: closed({ added: array(ref('ManufacturerCertificate')), removed: array(ref('ManufacturerCertificate')), unchanged: array(ref('Sha256')) }),
      models: closed({ added: array(ref('ModelName')), removed: array(ref('ModelName')), unchanged: array(ref('ModelName')) }),
      crl: closed({ before: ref('CrlSourceView'), after: ref('CrlSourceView'), changed: bool() }),
    }),
    sha256: { ...ref('Sha256'), description: 'What an approval names as its proposal.' },
    proposedBy: { type: ['string', 'null'] },
    proposedAt: nullableTime,
  }, undefined, { description: 'The change waiting for a second operator.' })),
  approvedBy: { type: ['string', 'null'] },
  approvedAt: nullableTime,
  withdrawn: nullable(closed({ by: { type: ['string', 'null'] }, at: dateTime(), reason: { type: ['string', 'null'] } })),
  crl: closed({
    number: { type: ['string', 'null'] },
    thisUpdate: nullableTime,
    nextUpdate: nullableTime,
    checkedAt: nullableTime,
    error: { type: ['string', 'null'] },
  }),
  claimedDevices: int({ minimum: 0 }),
  withdrawal: ref('BatchProgress'),
  certificateWithdrawals: record(ref('BatchProgress'), { description: 'Each withdrawn intermediate\'s job, by the certificate\'s SHA-256.' }),
};
const manufacturer = closed(manufacturerProperties, ['id', 'status', 'active', 'retiredCertificates', 'pending', 'approvedBy', 'approvedAt', 'withdrawn', 'crl']);
const self = closed({
  id: str({ const: 'self' }),
  status: str({ const: 'active' }),
  builtIn: bool({ const: true }),
  certificates: array(closed({ subject: str(), sha256: ref('Sha256'), pem: ref('CertificatePem') })),
}, undefined, { description: 'This CA\'s own factory: the root and the factory CA.' });

const claimedDevice = closed({
  serial: ref('Serial'),
  model: ref('ModelName'),
  birthCertificateSha256: str({ pattern: '^[0-9a-fA-F]{64}$', description: 'Left out for a device that attests with apple or android-key: it is claimed by (manufacturer, serial).' }),
  batch: ref('Batch'),
  birthCertificate: str({ maxLength: 16384, description: 'The birth certificate in PEM (then any intermediates).' }),
}, ['serial', 'model']);

export const manufacturersApi: ApiGroup = {
  tag: { name: 'manufacturers', description: 'Devices born elsewhere: manufacturers, their CRLs, manifests, claims and ownership statements; role operator (docs/operators/manufacturers.md).' },
  schemas: {
    ManufacturerCertificate: certificateView,
    CrlSourceView: crlView,
    Manufacturer: manufacturer,
    SelfManufacturer: self,
    CrlApplied: closed({ changed: bool(), entries: { type: ['integer', 'null'], minimum: 0 }, quarantined: array(ref('Serial'), { description: 'Devices quarantined because the CRL revokes their birth certificates.' }) }),
    ClaimedDevice: claimedDevice,
  },
  paths: {
    '/operator/v1/manufacturers': {
      get: {
        ...role,
        operationId: 'listManufacturers',
        summary: 'Every manufacturer, the built-in one first',
        responses: { 200: { description: 'The manufacturers.', schema: closed({ manufacturers: array({ anyOf: [ref('SelfManufacturer'), ref('Manufacturer')] }) }) } },
        problems: [],
      },
    },
    '/operator/v1/manufacturers/{id}': {
      get: {
        ...role,
        operationId: 'getManufacturer',
        summary: 'A manufacturer',
        parameters: [readIdParam],
        responses: { 200: { description: 'The manufacturer.', schema: { anyOf: [ref('SelfManufacturer'), ref('Manufacturer')] } } },
        problems: [400, 404],
      },
      put: {
        ...role,
        operationId: 'proposeManufacturer',
        summary: 'Propose a new manufacturer, or a change to one; a second operator approves it',
        parameters: [idParam],
        body: {
          schema: closed({
            certificates: array(str({ maxLength: 16384, description: 'One PEM CA certificate.' }), { minItems: 1, maxItems: 8, description: 'The manufacturer\'s root (self-signed) and any intermediates that chain to it.' }),
            models: array(ref('ModelName'), { minItems: 1, maxItems: 256, description: 'Declared models.' }),
            crl: {
              description: 'Where its CRL comes from: a URL, an uploaded PEM, or null (it publishes no revocation).',
              oneOf: [
                { type: 'null' },
                closed({ url: str({ format: 'uri', maxLength: 2048, pattern: '^[Hh][Tt][Tt][Pp][Ss]?:' }) }),
                closed({ pem: str({ maxLength: 16 * 1024 * 1024 }) }),
              ],
            },
          }),
          limit: '24mb',
        },
        responses: {
          201: { description: 'A new manufacturer, pending.', schema: ref('Manufacturer'), headers: { Location: header('The manufacturer.') } },
          200: { description: 'A change, pending.', schema: ref('Manufacturer'), headers: { Location: header('The manufacturer.') } },
        },
        problems: [404, 409],
      },
    },
    '/operator/v1/manufacturers/{id}/approve': {
      post: {
        ...role,
        operationId: 'approveManufacturer',
        summary: 'Approve the pending change (another operator than its proposer); it comes into force',
        parameters: [idParam],
        body: { schema: closed({ proposal: { ...ref('Sha256'), description: 'The pending change\'s sha256, as read.' } }), limit: '8kb' },
        responses: { 200: { description: 'The manufacturer.', schema: ref('Manufacturer') } },
        problems: [404, 409],
      },
    },
    '/operator/v1/manufacturers/{id}/crl': {
      post: {
        ...role,
        operationId: 'applyManufacturerCrl',
        summary: 'Read the manufacturer\'s CRL now: from its URL ({}), or the PEM given',
        parameters: [idParam],
        body: { schema: closed({ pem: str({ maxLength: 16 * 1024 * 1024 }) }, []), limit: '24mb' },
        responses: { 200: { description: 'What the CRL changed.', schema: ref('CrlApplied') } },
        problems: [404, 409],
      },
    },
    '/operator/v1/manufacturers/{id}/withdraw': {
      post: {
        ...role,
        operationId: 'withdrawManufacturer',
        summary: 'Withdraw a manufacturer (or one intermediate): its devices are quarantined and their certificates revoked',
        description: 'Answers 200 when the work finishes within 5 seconds, else 202 while it goes on.',
        parameters: [idParam],
        body: {
          schema: closed({
            reason: { oneOf: [ref('RevocationReason'), int({ enum: [0, 1, 3, 4, 5, 9] })], description: 'An RFC 5280 reason, by name or code.' },
            certificate: { ...ref('Sha256'), description: 'Withdraw only this intermediate.' },
          }, ['reason']),
          limit: '8kb',
        },
        responses: {
          200: { description: 'Finished.', schema: ref('Manufacturer'), headers: { Location: header('The manufacturer.') } },
          202: { description: 'Under way.', schema: ref('Manufacturer'), headers: { Location: header('The manufacturer.') } },
        },
        problems: [404, 409],
      },
    },
    '/operator/v1/manufacturers/{id}/manifests': {
      post: {
        ...role,
        operationId: 'importManifest',
        summary: 'Claim the devices of a manufacturer\'s manifest',
        parameters: [idParam],
        body: {
          schema: closed({
            devices: array(ref('ClaimedDevice'), { minItems: 1, maxItems: 10000 }),
            signature: str({ maxLength: 2048, pattern: '^[A-Za-z0-9+/_-]+={0,2}$', description: 'The manufacturer\'s signature over the RFC 8785 canonical JSON of devices, base64.' }),
            signer: str({ maxLength: 32768, description: 'The signing certificate in PEM, then any intermediates.' }),
          }, ['devices']),
          limit: '4mb',
        },
        responses: { 201: { description: 'Claimed.', schema: closed({ manufacturer: str(), claimed: int({ minimum: 0 }), manifestSha256: ref('Sha256') }) } },
        problems: [404, 409],
      },
    },
    '/operator/v1/devices/{serial}/claim': {
      post: {
        ...role,
        operationId: 'claimDevice',
        summary: 'Claim one device born elsewhere',
        parameters: [serialParam],
        body: {
          schema: closed({ manufacturer: str({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$' }), model: ref('ModelName'), birthCertificateSha256: str({ pattern: '^[0-9a-fA-F]{64}$', description: 'Left out for a device that attests with apple or android-key.' }), batch: ref('Batch') }, ['manufacturer', 'model']),
          limit: '8kb',
        },
        responses: {
          201: {
            description: 'Claimed.',
            schema: closed({ device: ref('Serial'), manufacturer: str(), model: ref('ModelName'), birthCertificateSha256: { oneOf: [ref('Sha256'), { type: 'null' }] }, state: str({ const: 'manufactured' }) }),
          },
        },
        problems: [404, 409],
      },
    },
    '/operator/v1/devices/{serial}/ownership-statement': {
      post: {
        ...role,
        operationId: 'exportOwnership',
        summary: 'Hand a device to another company: record the transfer and sign an ownership statement',
        parameters: [serialParam],
        body: { schema: closed({ to: ref('Name'), evidence: text(2048, true) }), limit: '8kb' },
        responses: { 200: { description: 'The device\'s whole ownership chain, the new statement last.', schema: closed({ statements: array(ref('OwnershipStatement'), { minItems: 1 }) }) } },
        problems: [404, 409],
      },
    },
    '/operator/v1/ownership-statements': {
      post: {
        ...role,
        operationId: 'importOwnership',
        summary: 'Take over a device another CA handed to us, by its ownership chain',
        body: {
          schema: closed({
            statements: array(open({}, [], { description: 'An ownership statement.' }), { minItems: 1, maxItems: 64 }),
            manufacturer: ref('Name'),
            model: ref('ModelName'),
            batch: ref('Batch'),
            issuer: ref('Name'),
          }, ['statements', 'manufacturer', 'model']),
          limit: '512kb',
        },
        responses: { 201: { description: 'The device and its owner now.', schema: closed({ device: ref('Serial'), owner: str() }) } },
        problems: [404, 409],
      },
    },
  },
};
