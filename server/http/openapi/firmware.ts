import { bool, closed, dateTime, header, int, nullable, pathParam, ref, str, array, type ApiGroup } from './dsl.ts';
import { PUBLICATION_SERVER } from './servers.ts';

const tags = ['firmware'];
const role = { tags, roles: ['operator'] };
const VERSION = '^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$';
const modelParam = pathParam('model', ref('ModelName'), 'The model name.');
const versionParam = pathParam('version', str({ pattern: VERSION }), 'The release\'s version.');
const sequence = (description: string) => int({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description });
const nullableText = { type: ['string', 'null'] };

const release = closed({
  model: ref('ModelName'),
  version: str({ pattern: VERSION }),
  digest: { ...ref('Sha256'), description: 'SHA-256 of the image.' },
  size: nullable(int({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'The image\'s size in bytes; null for a legacy release.' })),
  sequence: sequence('The SUIT manifest sequence number: unique and increasing per model.'),
  minSequence: nullable(sequence('The lowest sequence the model\'s devices may run from now on, once approved.')),
  proposal: { ...ref('Sha256'), description: 'SHA-256 of the release\'s RFC 8785 JSON ({model, version, digest, size, sequence, minSequence when given}): the approver names it.' },
  status: str({ enum: ['proposed', 'approved', 'withdrawn'] }),
  proposedBy: ref('Name'),
  proposedAt: dateTime(),
  approvedBy: nullableText,
  approvedAt: nullable(dateTime()),
  signer: { ...nullableText, description: 'The serial of the firmware signer certificate that signed it.' },
  manifestSha256: { ...nullableText, description: 'SHA-256 (hex) of the bstr-wrapped SUIT manifest: how histories name the signed manifest.' },
  envelope: { ...nullableText, description: 'Where the signed SUIT envelope is published, once approved.' },
  withdrawnAt: nullable(dateTime()),
  withdrawReason: nullableText,
  legacy: bool({ description: 'A former allowlist entry: unsigned (no envelope), sequence 0, accepted until the model\'s legacy cut-off.' }),
});

export const firmwareApi: ApiGroup = {
  tag: { name: 'firmware', description: 'Signed firmware releases: proposed by one operator, approved by another, then signed as a SUIT envelope (docs/operators/firmware.md).' },
  schemas: { FirmwareRelease: release },
  paths: {
    '/operator/v1/models/{model}/firmware-releases': {
      post: {
        ...role,
        operationId: 'proposeFirmwareRelease',
        summary: 'Propose a firmware release; another operator approves it, and it is signed then',
        parameters: [modelParam],
        body: {
          schema: closed({
            version: str({ pattern: VERSION }),
            digest: str({ pattern: '^[0-9a-fA-F]{64}$', description: 'SHA-256 of the image, hex.' }),
            size: int({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
            sequence: sequence('Above every other release of the model.'),
            minSequence: sequence('At most the release\'s own sequence.'),
          }, ['version', 'digest', 'size', 'sequence']),
          limit: '8kb',
        },
        responses: { 201: { description: 'The proposed release.', schema: ref('FirmwareRelease'), headers: { Location: header('The release.') } } },
        problems: [404, 409],
      },
      get: {
        ...role,
        operationId: 'listFirmwareReleases',
        summary: 'A model\'s releases: legacy releases first, then by sequence',
        parameters: [modelParam],
        responses: { 200: { description: 'The releases.', schema: closed({ model: ref('ModelName'), releases: array(ref('FirmwareRelease')) }) } },
        problems: [400, 404],
      },
    },
    '/operator/v1/models/{model}/firmware-releases/{version}': {
      get: {
        ...role,
        operationId: 'getFirmwareRelease',
        summary: 'A release, with the proposal hash an approver names',
        parameters: [modelParam, versionParam],
        responses: { 200: { description: 'The release.', schema: ref('FirmwareRelease') } },
        problems: [400, 404],
      },
    },
    '/operator/v1/models/{model}/firmware-releases/{version}/approve': {
      post: {
        ...role,
        operationId: 'approveFirmwareRelease',
        summary: 'Approve a proposed release (another operator than its proposer), naming its proposal hash; it is signed now',
        parameters: [modelParam, versionParam],
        body: { schema: closed({ proposal: { ...ref('Sha256'), description: 'The release\'s proposal, as read.' } }), limit: '8kb' },
        responses: { 200: { description: 'The approved, signed release.', schema: ref('FirmwareRelease') } },
        problems: [404, 409],
      },
    },
    '/operator/v1/models/{model}/firmware-releases/{version}/withdraw': {
      post: {
        ...role,
        operationId: 'withdrawFirmwareRelease',
        summary: 'Withdraw an approved release: check 5 refuses it from now on, and its devices are asked to renew now (renewalInfo)',
        parameters: [modelParam, versionParam],
        body: { schema: closed({ reason: str({ minLength: 1, maxLength: 1024 }) }), limit: '8kb' },
        responses: { 200: { description: 'The withdrawn release.', schema: ref('FirmwareRelease') } },
        problems: [404, 409],
      },
    },
    '/firmware/{model}/{file}': {
      servers: [PUBLICATION_SERVER],
      get: {
        tags,
        operationId: 'firmwareEnvelope',
        summary: 'An approved release\'s signed SUIT envelope (RFC 9124, draft-ietf-suit-manifest; COSE_Sign1, RFC 9052)',
        parameters: [modelParam, pathParam('file', str({ pattern: '^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}\\.suit$' }), 'The version and .suit, e.g. 1.2.0.suit.')],
        responses: {
          200: {
            description: 'The envelope; 404 until the release is approved.',
            content: { 'application/suit-envelope+cose': undefined },
            headers: { 'Cache-Control': header('public, max-age=3600') },
          },
        },
        problems: [404, 500],
      },
    },
  },
};
