import { array, closed, header, int, pathParam, queryParam, ref, str, type ApiGroup } from './dsl.ts';
import { PUBLICATION_SERVER } from './servers.ts';

/** tlog-tiles' `<N>[.p/<W>]`: N in three-digit elements, all but the last prefixed with x; W from 1 to 255. */
const INDEX_AND_WIDTH = '(?:x(?!000)\\d{3}/(?:x\\d{3}/){0,3})?\\d{3}(?:\\.p/[1-9]\\d{0,2})?';
const slashNote = 'Its slashes are literal path separators (the C2SP tlog-tiles layout), not part of one segment.';

export const tlogApi: ApiGroup = {
  tag: {
    name: 'log',
    description: 'The audit log as a Merkle tree in the C2SP tlog-tiles layout (docs/auditors/audit-log.md): the signed checkpoint, the verifier key and the hash tiles are public on the plain-HTTP listener; the entries (the events) are for auditors and operators, on HTTPS.',
    externalDocs: { url: 'https://c2sp.org/tlog-tiles', description: 'C2SP tlog-tiles' },
  },
  schemas: {
    DeviceProof: closed({
      size: int({ minimum: 1, description: 'The tree size of the checkpoint the proofs are for.' }),
      checkpoint: str({ description: 'That checkpoint, the signed note with the log\'s signature alone (GET /log/checkpoint adds the witnesses\' cosignatures).' }),
      entries: array(closed({
        index: int({ minimum: 0, description: 'The entry index: the event\'s seq minus 1.' }),
        entry: str({ description: 'The event\'s canonical JSON; its UTF-8 bytes are the entry.' }),
        proof: array(str({ contentEncoding: 'base64' }), { description: 'RFC 9162 inclusion proof, leaf side first.' }),
      })),
    }),
  },
  paths: {
    '/audit/v1/devices/{serial}/proof': {
      get: {
        tags: ['log'],
        roles: ['auditor', 'operator'],
        operationId: 'deviceProof',
        summary: 'Every entry of the Merkle log whose event names the device, with its inclusion proof in a signed checkpoint',
        description: 'A device\'s history, provable against a checkpoint without the rest of the log. Each read is itself an audit event (audit.device-proof-read).',
        parameters: [
          pathParam('serial', ref('Serial'), 'The device serial.'),
          queryParam('size', str({ pattern: '^(0|[1-9]\\d{0,15})$' }), 'A published checkpoint\'s tree size; the latest when absent.'),
        ],
        responses: { 200: { description: 'The proofs.', schema: ref('DeviceProof') } },
        problems: [400, 404],
      },
    },
    '/log/checkpoint': {
      servers: [PUBLICATION_SERVER],
      get: {
        tags: ['log'],
        operationId: 'logCheckpoint',
        summary: 'The latest checkpoint: a C2SP signed note (origin, tree size, base64 root hash, Ed25519 signature), then the witnesses\' cosignatures (C2SP tlog-cosignature)',
        responses: {
          200: { description: 'The signed note; a new one within 10 s of new events.', content: { 'text/plain': str() }, headers: { 'Cache-Control': header('public, max-age=5') } },
        },
        problems: [404, 500, 503],
      },
    },
    '/log/key': {
      servers: [PUBLICATION_SERVER],
      get: {
        tags: ['log'],
        operationId: 'logKey',
        summary: 'The log\'s verifier key, <name>+<hex key hash>+<base64(0x01 || Ed25519 public key)>, one line',
        responses: { 200: { description: 'The verifier key, as Go\'s note.NewVerifier reads it.', content: { 'text/plain': str() } } },
        problems: [404, 500],
      },
    },
    '/log/tile/{tile}': {
      servers: [PUBLICATION_SERVER],
      get: {
        tags: ['log'],
        operationId: 'logHashTile',
        summary: 'A hash tile of the published tree: <L>/<N>[.p/<W>], 32 bytes per hash',
        parameters: [pathParam('tile', str({ pattern: `^(?:0|[1-9]\\d?)/${INDEX_AND_WIDTH}$` }), `The level, then the tile index and optional partial width, e.g. 0/x001/234 or 1/000.p/7. ${slashNote}`)],
        responses: {
          200: {
            description: 'The tile\'s hashes; full tiles never change.',
            content: { 'application/octet-stream': undefined },
            headers: { 'Cache-Control': header('public, max-age=31536000, immutable for a full tile; public, max-age=3600 for a partial one.') },
          },
        },
        problems: [400, 404, 500, 503],
      },
    },
    '/log/tile/entries/{bundle}': {
      get: {
        tags: ['log'],
        roles: ['auditor', 'operator'],
        operationId: 'logEntryBundle',
        summary: 'An entry bundle: <N>[.p/<W>]; each entry a big-endian uint16 length and the event\'s canonical JSON',
        description: 'Entry i is the audit event with seq i + 1, its canonical JSON exactly as stored and hashed. Each read is itself an audit event (audit.log-entries-read).',
        parameters: [pathParam('bundle', str({ pattern: `^${INDEX_AND_WIDTH}$` }), `The bundle index and optional partial width, e.g. 000 or x001/234.p/9. ${slashNote}`)],
        responses: { 200: { description: 'The entries.', content: { 'application/octet-stream': undefined }, headers: { 'Cache-Control': header('private, no-store') } } },
        problems: [400, 404],
      },
    },
  },
};
