import { deviceProperties, grantProperties, PATTERNS } from './components.ts';
import {
  array, bool, closed, dateTime, empty, header, int, nullable, pathParam, queryParam, record, ref, str, text, type ApiGroup, type OperationSpec,
} from './dsl.ts';

const serialParam = pathParam('serial', ref('Serial'), 'The device serial.');
const modelParam = pathParam('model', ref('ModelName'), 'The model name.');
const classParam = pathParam('class', ref('Name'), 'The device class.');
const grantParam = pathParam('id', str({ pattern: PATTERNS.grantId }), 'The support grant id: 24 hex digits.');
const batchParam = pathParam('batch', ref('Batch'), 'The factory batch.');
const duration = (description: string) => str({ pattern: '^[0-9]{1,6}[smhd]$', description });
const tags = ['operator'];
const role = { tags, roles: ['operator'] };

const retirement = closed({ device: ref('Device'), revokedCertificates: array(ref('CertificateSerial'), { description: 'The serials of the certificates this revoked.' }) });
const reasonBody = closed({ reason: text(1024, true) });

const firmware = closed({
  model: ref('ModelName'),
  allowed: array(closed({ version: str(), digest: str({ pattern: '^[0-9a-f]+$' }) })),
});

const deviceTransition = (transition: 'suspend' | 'resume'): OperationSpec => ({
  ...role,
  operationId: `${transition}Device`,
  summary: transition === 'suspend' ? 'Suspend a device: its renewals are refused until it is resumed' : 'Resume a suspended device',
  parameters: [serialParam],
  body: { schema: empty(), limit: '8kb' },
  responses: { 200: { description: 'The device in its new state.', schema: closed({ device: ref('Device') }) } },
  problems: [404, 409],
});

/** The attestation formats a device class accepts (fmt names the CA verifies: `devid`, `tpm`, `android-key`, `apple`). */
const formats = array(str({ maxLength: 64 }), { minItems: 1, uniqueItems: true, description: 'Attestation formats (fmt) the class accepts: "devid", "tpm", "android-key", "apple"; absent in a request means ["devid"].' });

/** A gateway class (RFC 7030 3.7, docs/operators/gateways.md): the models whose declared devices its devices mediate. */
const gatewaySpec = closed({
  models: array(ref('ModelName'), { minItems: 1, maxItems: 64, uniqueItems: true, description: 'Models whose devices, declared with this gateway, it may enroll.' }),
}, ['models'], { description: 'Its devices are EST gateways for the devices of these models whose declaration names them; absent: not a gateway.' });

export const operatorApi: ApiGroup = {
  tag: { name: 'operator', description: 'Models and their firmware, device classes, device states, ownership, support grants, reprovisioning, retirement and revocation; role operator (docs/operators/lifecycle.md, docs/operators/revocation.md).' },
  schemas: {
    Model: closed({ name: ref('ModelName'), hwType: str({ description: 'The HardwareModuleName hwType OID.' }), manufacturer: str(), defaultClass: { type: ['string', 'null'] } }),
    FirmwareAllowlist: firmware,
    FirmwareLegacyCutoff: closed({ model: ref('ModelName'), until: nullable(dateTime()), passed: bool({ description: 'The cut-off has passed: legacy releases are refused, the allowlist is gone.' }) }),
    DeviceClass: closed({
      name: ref('Name'),
      ttl: duration('Lifetime of operational certificates, 5m to 90d.'),
      stagedRenewal: bool(),
      factoryReattestEvery: duration('How often the device must attest with its birth key, 1h to 3650d.'),
      serverAuth: bool(),
      counterRequired: bool(),
      onCloneSignal: str({ enum: ['refuse', 'suspend'] }),
      attestationFormats: formats,
      est: bool({ description: 'Its devices may enroll with EST (RFC 7030) as well as ACME.' }),
      onWithdrawnFirmware: str({ enum: ['refuse', 'suspend'], description: 'A device attesting on a withdrawn firmware release is refused, or refused and suspended.' }),
      gateway: gatewaySpec,
    }, ['name', 'ttl', 'stagedRenewal', 'factoryReattestEvery', 'serverAuth', 'counterRequired', 'onCloneSignal', 'attestationFormats', 'est', 'onWithdrawnFirmware']),
    CertificateState: closed({
      serial: ref('CertificateSerial'),
      kind: str({ enum: ['birth', 'operational', 'server', 'support', 'firmware-signer'] }),
      device: { type: ['string', 'null'] },
      revokedAt: nullable(dateTime()),
      reason: { type: ['string', 'null'], description: 'The RFC 5280 reason name.' },
    }),
    DeviceRetirement: retirement,
    GatewayDevice: closed({
      device: closed({ ...deviceProperties, class: { type: ['string', 'null'] } }),
      gateways: array(ref('Serial'), { description: 'Every gateway allowed to enroll it.' }),
    }),
    RotationReport: closed({
      generatedAt: dateTime(),
      devices: int({ minimum: 0 }),
      byReason: record(int({ minimum: 0 })),
      byClass: record(record(int({ minimum: 0 }))),
      byModel: record(record(int({ minimum: 0 }))),
      byOwner: record(record(int({ minimum: 0 }))),
      entries: array(closed({
        serial: ref('Serial'),
        model: ref('ModelName'),
        owner: { type: ['string', 'null'] },
        class: str(),
        state: ref('DeviceState'),
        reasons: array(str({ enum: ['never-enrolled', 'expired-without-successor', 'revoked-without-successor', 'overdue', 'factory-reattestation-overdue', 'mediated'] })),
        certificate: { type: ['string', 'null'] },
        notAfter: nullable(dateTime()),
        assurance: { type: ['string', 'null'], enum: ['attested', 'mediated', null], description: 'Of its newest operational certificate: mediated by a gateway, or attested.' },
      })),
    }),
  },
  paths: {
    '/operator/v1/models/{model}': {
      put: {
        ...role,
        operationId: 'declareModel',
        summary: 'Declare or update a model',
        description: 'Idempotent. Once a birth certificate names the model, its hwType and manufacturer are fixed (409); the default class may change.',
        parameters: [modelParam],
        body: { schema: closed({ hwType: str({ description: 'An OID.' }), manufacturer: text(64), defaultClass: ref('Name') }, ['hwType', 'manufacturer']), limit: '8kb' },
        responses: { 201: { description: 'Declared.', schema: ref('Model') }, 200: { description: 'Updated, or unchanged.', schema: ref('Model') } },
        problems: [404, 409],
      },
    },
    '/operator/v1/models/{model}/firmware': {
      put: {
        ...role,
        operationId: 'setFirmwareAllowlist',
        summary: 'Replace a model\'s firmware allowlist, its legacy releases ([] removes the policy); 410 from the model\'s legacy cut-off',
        parameters: [modelParam],
        body: {
          schema: closed({
            allowed: array(closed({ version: str({ pattern: '^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$' }), digest: str({ pattern: '^(?:[0-9a-fA-F]{2}){32,64}$' }) }), { maxItems: 256, description: 'Entries of distinct versions; each is a legacy release.' }),
          }),
          limit: '64kb',
        },
        responses: { 200: { description: 'The allowlist now in force.', schema: ref('FirmwareAllowlist') } },
        problems: [404, 409, 410],
      },
      get: {
        ...role,
        operationId: 'getFirmwareAllowlist',
        summary: 'A model\'s firmware allowlist: its legacy releases not withdrawn; 410 from the model\'s legacy cut-off',
        parameters: [modelParam],
        responses: { 200: { description: 'The allowlist ([]: no policy).', schema: ref('FirmwareAllowlist') } },
        problems: [400, 404, 410],
      },
    },
    '/operator/v1/models/{model}/firmware-legacy': {
      put: {
        ...role,
        operationId: 'setFirmwareLegacyCutoff',
        summary: 'Set the date from which check 5 refuses the model\'s legacy releases and its allowlist answers 410; it may move until it has passed',
        parameters: [modelParam],
        body: { schema: closed({ until: dateTime() }), limit: '8kb' },
        responses: { 200: { description: 'The cut-off now in force.', schema: ref('FirmwareLegacyCutoff') } },
        problems: [404, 409],
      },
      get: {
        ...role,
        operationId: 'getFirmwareLegacyCutoff',
        summary: 'A model\'s legacy cut-off',
        parameters: [modelParam],
        responses: { 200: { description: 'The cut-off (null: none set, legacy releases are accepted).', schema: ref('FirmwareLegacyCutoff') } },
        problems: [400, 404],
      },
    },
    '/operator/v1/device-classes/{class}': {
      put: {
        ...role,
        operationId: 'putDeviceClass',
        summary: 'Create or replace a device class (every field)',
        parameters: [classParam],
        body: {
          schema: closed({
            ttl: duration('5m to 90d, whole seconds.'),
            stagedRenewal: bool(),
            factoryReattestEvery: duration('1h to 3650d, whole seconds.'),
            serverAuth: bool(),
            counterRequired: bool(),
            onCloneSignal: str({ enum: ['refuse', 'suspend'] }),
            attestationFormats: formats,
            est: bool({ description: 'EST enrollment for its devices (RFC 7030); absent means false.' }),
            onWithdrawnFirmware: str({ enum: ['refuse', 'suspend'], description: 'A device attesting on a withdrawn firmware release: refused (absent means refuse), or refused and suspended.' }),
            gateway: gatewaySpec,
          }, ['ttl', 'stagedRenewal', 'factoryReattestEvery', 'serverAuth', 'counterRequired', 'onCloneSignal']),
          limit: '8kb',
        },
        responses: { 201: { description: 'Created.', schema: ref('DeviceClass') }, 200: { description: 'Replaced, or unchanged.', schema: ref('DeviceClass') } },
        problems: [],
      },
      get: {
        ...role,
        operationId: 'getDeviceClass',
        summary: 'A device class',
        parameters: [classParam],
        responses: { 200: { description: 'The class.', schema: ref('DeviceClass') } },
        problems: [400, 404],
      },
    },
    '/operator/v1/devices/{serial}/class': {
      put: {
        ...role,
        operationId: 'assignDeviceClass',
        summary: 'Set a device\'s own class, from its next renewal on',
        parameters: [serialParam],
        body: { schema: closed({ class: ref('Name') }), limit: '8kb' },
        responses: { 200: { description: 'The device and its class.', schema: closed({ serial: ref('Serial'), class: ref('Name') }) } },
        problems: [404],
      },
    },
    '/operator/v1/devices/{serial}/transfer': {
      post: {
        ...role,
        operationId: 'transferDevice',
        summary: 'Record a change of owner',
        parameters: [serialParam],
        body: { schema: closed({ to: ref('Name'), evidence: text(2048, true) }), limit: '8kb' },
        responses: { 200: { description: 'The transfer.', schema: closed({ serial: ref('Serial'), from: { type: ['string', 'null'] }, to: ref('Name') }) } },
        problems: [404, 409],
      },
    },
    '/operator/v1/devices/{serial}/decommission': {
      post: {
        ...role,
        operationId: 'decommissionDevice',
        summary: 'Retire a device for good; its live certificates are revoked',
        parameters: [serialParam],
        body: { schema: reasonBody, limit: '8kb' },
        responses: { 200: { description: 'The retired device and what was revoked.', schema: ref('DeviceRetirement') } },
        problems: [404, 409],
      },
    },
    '/operator/v1/devices/{serial}/reprovision': {
      post: {
        ...role,
        operationId: 'reprovisionDevice',
        summary: 'Let the next birth request bind a new key; the device\'s live certificates are revoked',
        parameters: [serialParam],
        body: { schema: reasonBody, limit: '8kb' },
        responses: { 200: { description: 'The device and what was revoked.', schema: ref('DeviceRetirement') } },
        problems: [404, 409],
      },
    },
    '/operator/v1/devices/{serial}/counter-reset': {
      post: {
        ...role,
        operationId: 'resetDeviceCounter',
        summary: "Set the device's attestation counter back to 0 (after its TPM was cleared); audited with the reason",
        parameters: [serialParam],
        body: { schema: reasonBody, limit: '8kb' },
        responses: {
          200: {
            description: 'The counter the next attestation must exceed, and the one it had.',
            schema: closed({ serial: ref('Serial'), signCount: int({ minimum: 0, maximum: 0 }), previous: int({ minimum: 0 }) }),
          },
        },
        problems: [404],
      },
    },
    '/operator/v1/devices/{serial}/suspend': { post: deviceTransition('suspend') },
    '/operator/v1/devices/{serial}/resume': { post: deviceTransition('resume') },
    '/operator/v1/devices/{serial}/support-grants': {
      post: {
        ...role,
        operationId: 'requestSupportGrant',
        summary: 'Request a vendor support grant; a second operator approves it',
        parameters: [serialParam],
        body: { schema: closed({ vendor: ref('Name'), reason: text(1024, true), hours: int({ minimum: 1, maximum: 8 }) }), limit: '8kb' },
        responses: { 201: { description: 'The pending grant.', schema: ref('SupportGrant') } },
        problems: [404, 409],
      },
    },
    '/operator/v1/support-grants/{id}': {
      get: {
        ...role,
        operationId: 'getSupportGrant',
        summary: 'A support grant and the certificates issued under it',
        parameters: [grantParam],
        responses: {
          200: {
            description: 'The grant.',
            schema: closed({ ...grantProperties, certificates: array(ref('CertificateSerial')) }),
          },
        },
        problems: [400, 404],
      },
    },
    '/operator/v1/support-grants/{id}/approve': {
      post: {
        ...role,
        operationId: 'approveSupportGrant',
        summary: 'Approve a pending grant (another operator than the one who requested it); its window starts now',
        parameters: [grantParam],
        body: { schema: empty(), limit: '8kb' },
        responses: { 200: { description: 'The approved grant.', schema: ref('SupportGrant') } },
        problems: [404, 409],
      },
    },
    '/operator/v1/support-grants/{id}/revoke': {
      post: {
        ...role,
        operationId: 'revokeSupportGrant',
        summary: 'End a grant early and revoke its certificates',
        parameters: [grantParam],
        body: { schema: empty(), limit: '8kb' },
        responses: { 200: { description: 'The revoked grant.', schema: ref('SupportGrant') } },
        problems: [404, 409],
      },
    },
    '/operator/v1/reports/rotation': {
      get: {
        ...role,
        operationId: 'rotationReport',
        summary: 'Devices in service that should have rotated and have not',
        description: 'JSON, or CSV with format=csv (or Accept: text/csv without format).',
        parameters: [
          queryParam('class', ref('Name'), 'Only devices of this class.'),
          queryParam('model', ref('ModelName'), 'Only devices of this model.'),
          queryParam('owner', ref('Name'), 'Only devices of this owner.'),
          queryParam('format', str({ enum: ['json', 'csv'] }), 'The answer\'s format.'),
        ],
        responses: { 200: { description: 'The report.', schema: ref('RotationReport'), content: { 'text/csv': str() } } },
        problems: [400],
      },
    },
    '/operator/v1/devices': {
      post: {
        ...role,
        operationId: 'declareGatewayDevice',
        summary: 'Declare a device that gateways enroll (a constrained device without a factory key), or add gateways to a device',
        description: 'Idempotent. A new serial is created without a birth certificate and gets mediated certificates through its gateways; an existing device must be of the model named and gains the gateways (it attests through them). Every gateway must be a device whose class mediates the model (409 otherwise).',
        body: {
          schema: closed({
            serial: ref('Serial'),
            model: ref('ModelName'),
            class: ref('Name'),
            gateways: array(ref('Serial'), { minItems: 1, maxItems: 16, uniqueItems: true, description: 'The serials of the gateways allowed to enroll it.' }),
          }, ['serial', 'model', 'gateways']),
          limit: '8kb',
        },
        responses: {
          201: { description: 'Declared.', schema: ref('GatewayDevice') },
          200: { description: 'Gateways added, or unchanged.', schema: ref('GatewayDevice') },
        },
        problems: [404, 409],
      },
      get: {
        ...role,
        operationId: 'listDevicesByOwner',
        summary: 'An owner\'s devices, 1000 a page',
        parameters: [
          queryParam('owner', ref('Name'), 'The owner.', true),
          queryParam('after', ref('Serial'), 'The `next` of the previous page.'),
        ],
        responses: {
          200: {
            description: 'A page; `next` is there when more may follow.',
            schema: closed({
              owner: ref('Name'),
              devices: array(closed({ ...deviceProperties, owner: { type: ['string', 'null'] }, class: { type: ['string', 'null'] } })),
              next: ref('Serial'),
            }, ['owner', 'devices']),
          },
        },
        problems: [400],
      },
    },
    '/operator/v1/certificates/{serial}/revoke': {
      post: {
        ...role,
        operationId: 'revokeCertificate',
        summary: 'Revoke one certificate',
        description: 'A certificate revoked already keeps its first reason and time (revokedNow false).',
        parameters: [pathParam('serial', str({ pattern: PATTERNS.certificateSerial }), 'The certificate serial in hex, any case, an even number of digits.')],
        body: { schema: closed({ reason: ref('RevocationReason') }), limit: '8kb' },
        responses: { 200: { description: 'The certificate.', schema: closed({ certificate: ref('CertificateState'), revokedNow: bool() }) } },
        problems: [404],
      },
    },
    '/operator/v1/devices/{serial}/revoke': {
      post: {
        ...role,
        operationId: 'revokeDevice',
        summary: 'Revoke every live certificate of a device',
        parameters: [serialParam],
        body: { schema: closed({ reason: ref('RevocationReason') }), limit: '8kb' },
        responses: { 200: { description: 'What was revoked now.', schema: closed({ device: ref('Serial'), revokedCertificates: array(ref('CertificateState')) }) } },
        problems: [404],
      },
    },
    '/operator/v1/batches/{batch}/revoke': {
      post: {
        ...role,
        operationId: 'revokeBatch',
        summary: 'Declare a factory batch compromised and revoke all its devices\' certificates',
        description: 'Answers 200 when the work finishes within 5 seconds, else 202 while it goes on; GET the Location for its progress.',
        parameters: [batchParam],
        body: { schema: closed({ reason: ref('RevocationReason') }), limit: '8kb' },
        responses: {
          200: { description: 'Finished.', schema: ref('BatchProgress'), headers: { Location: header('The progress resource.') } },
          202: { description: 'Under way.', schema: ref('BatchProgress'), headers: { Location: header('The progress resource.') } },
        },
        problems: [409],
      },
    },
    '/operator/v1/batches/{batch}/revocation': {
      get: {
        ...role,
        operationId: 'batchRevocationProgress',
        summary: 'The progress of a batch revocation',
        parameters: [batchParam],
        responses: { 200: { description: 'Its progress.', schema: ref('BatchProgress') } },
        problems: [400, 404],
      },
    },
  },
};
