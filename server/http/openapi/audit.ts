import { array, bool, closed, dateTime, int, nullable, open, pathParam, queryParam, ref, str, type ApiGroup } from './dsl.ts';

const nullableString = { type: ['string', 'null'] };
const history = closed({
  device: closed({
    serial: ref('Serial'), model: ref('ModelName'), batch: ref('Batch'), line: str(), deviceClass: nullableString,
    owner: nullableString, state: ref('DeviceState'), manufacturer: str(), createdAt: dateTime(), updatedAt: dateTime(),
  }),
  claim: nullable(closed({
    manufacturer: str(), birthCertificateSha256: { oneOf: [ref('Sha256'), { type: 'null' }], description: 'null: claimed by (manufacturer, serial) alone.' }, source: str(), manifestSha256: nullableString,
    claimedBy: str(), claimedAt: dateTime(), supersededAt: nullable(dateTime()),
  })),
  ownershipStatements: array(closed({ direction: str({ enum: ['exported', 'imported'] }), at: dateTime(), sha256: ref('Sha256'), statement: ref('OwnershipStatement') })),
  events: array(closed({ seq: int({ minimum: 1 }), at: dateTime(), action: str(), actor: str(), data: open({}, [], { description: 'The event\'s data, by action.' }) })),
  ownership: array(closed({ from: nullableString, to: str(), at: dateTime(), principal: str(), evidence: str() })),
  firmware: array(closed({
    version: str(), digest: str(), certificateSerial: nullableString, attestedAt: dateTime(),
    release: closed({
      version: str({ description: 'The release\'s version.' }), sequence: { type: 'integer' },
      manifestSha256: { ...nullableString, description: 'SHA-256 (hex) of the bstr-wrapped SUIT manifest; null for a legacy release.' },
      signer: { ...nullableString, description: 'The serial of the firmware signer certificate that signed its manifest; null for a legacy release.' },
      legacy: { type: 'boolean', description: 'A former allowlist entry: unsigned.' },
    }, ['version', 'sequence', 'manifestSha256', 'signer', 'legacy'], { description: 'The release the attested firmware is (check 5), when the model has releases.' }),
  }, ['version', 'digest', 'certificateSerial', 'attestedAt'])),
  certificates: array(closed({
    serial: str(), kind: str({ enum: ['birth', 'operational', 'server', 'support', 'firmware-signer'] }), issuer: str({ description: 'The issuing CA\'s slug, or manufacturer:<id> for a birth certificate made elsewhere.' }),
    issuerSerial: str(), sha256: ref('Sha256'), predecessorSha256: nullableString, notBefore: dateTime(), notAfter: dateTime(),
    revokedAt: nullable(dateTime()), revocationReason: { type: ['integer', 'null'] }, pem: ref('CertificatePem'),
    assurance: str({ enum: ['attested', 'mediated'], description: 'Operational certificates: the assurance policy it carries (docs/operators/gateways.md).' }),
    mediator: closed({ serial: str(), certificateSha256: ref('Sha256') }, ['serial', 'certificateSha256'], { description: 'The gateway that vouched for a mediated certificate, and the certificate it authenticated with.' }),
    gateway: closed({ serial: str(), certificateSha256: ref('Sha256') }, ['serial', 'certificateSha256'], { description: 'The gateway that relayed an attestation.' }),
  }, ['serial', 'kind', 'issuer', 'issuerSerial', 'sha256', 'predecessorSha256', 'notBefore', 'notAfter', 'revokedAt', 'revocationReason', 'pem'])),
  supportGrants: array(ref('SupportGrant')),
  lineage: closed({
    nodes: array(closed({ serial: str(), kind: str(), sha256: ref('Sha256'), predecessor: nullableString, issuedAt: dateTime(), revoked: bool(), successors: int({ minimum: 0 }) })),
    forks: array(ref('Sha256')),
    refused: array(closed({ seq: int(), at: dateTime(), action: str(), on: nullableString, reason: str() })),
  }),
});

export const auditApi: ApiGroup = {
  tag: { name: 'audit', description: 'The tamper-evident audit log: verification, signed exports, checkpoints; device history for auditors and operators (docs/auditors/audit-log.md). Every read is itself an audit event.' },
  schemas: {
    AuditReport: {
      oneOf: [
        closed({ ok: bool({ const: true }), events: int({ minimum: 0 }), head: str(), checkpoints: int({ minimum: 0 }), latestCheckpoint: nullable(ref('Checkpoint')) }),
        closed({ ok: bool({ const: false }), events: int({ minimum: 0 }), brokenAt: int(), reason: str() }),
      ],
    },
    DeviceHistory: history,
  },
  paths: {
    '/audit/v1/verify': {
      get: {
        tags: ['audit'],
        roles: ['auditor'],
        operationId: 'verifyAudit',
        summary: 'Verify the whole hash chain and every signed checkpoint',
        responses: { 200: { description: 'The verdict (ok false names where the chain breaks).', schema: ref('AuditReport') } },
        problems: [],
      },
    },
    '/audit/v1/export': {
      get: {
        tags: ['audit'],
        roles: ['auditor'],
        operationId: 'exportAudit',
        summary: 'Export the audit events of one device, one batch or the fleet, signed',
        description: 'JSON lines, streamed; the last line signs the export with the audit key. A failure mid-stream cuts the connection.',
        parameters: [
          queryParam('device', ref('Serial'), 'Export one device (not with batch).'),
          queryParam('batch', ref('Batch'), 'Export one batch (not with device).'),
        ],
        responses: { 200: { description: 'The export.', content: { 'application/jsonl': str() } } },
        problems: [400],
      },
    },
    '/audit/v1/devices/{serial}/history': {
      get: {
        tags: ['audit'],
        roles: ['auditor', 'operator'],
        operationId: 'deviceHistory',
        summary: 'A device\'s full story: events, owners, firmware, certificates and their lineage',
        parameters: [pathParam('serial', ref('Serial'), 'The device serial.')],
        responses: { 200: { description: 'The history.', schema: ref('DeviceHistory') } },
        problems: [400, 404],
      },
    },
    '/audit/v1/checkpoints': {
      get: {
        tags: ['audit'],
        roles: ['auditor'],
        operationId: 'listCheckpoints',
        summary: 'Every signed checkpoint, with the audit key and its certificate (by the root)',
        responses: {
          200: {
            description: 'The checkpoints, oldest first.',
            schema: closed({ publicKey: str({ description: 'The audit key, SPKI PEM.' }), certificate: ref('CertificatePem'), checkpoints: array(ref('Checkpoint')) }),
          },
        },
        problems: [],
      },
      post: {
        tags: ['audit'],
        roles: ['operator'],
        operationId: 'createCheckpoint',
        summary: 'Sign a checkpoint of the chain head now',
        responses: {
          201: { description: 'A new checkpoint.', schema: closed({ checkpoint: ref('Checkpoint') }) },
          200: { description: 'The head has not moved (the latest checkpoint), or the log is empty (null).', schema: closed({ checkpoint: nullable(ref('Checkpoint')) }) },
        },
        problems: [],
      },
    },
  },
};
