import { array, closed, int, ref, str, type ApiGroup, type JsonObject } from './dsl.ts';

const birthRequest = closed({
  serial: ref('Serial'),
  model: ref('ModelName'),
  batch: ref('Batch'),
  csr: str({ minLength: 1, description: 'The device\'s PKCS#10 request: PEM, or base64url DER.' }),
  tpmActivation: closed({
    id: str({ pattern: '^[A-Za-z0-9_-]{22}$', description: 'The TPM challenge (POST /factory/v1/tpm-challenges).' }),
    credential: str({ description: 'Base64 of the 32 bytes TPM2_ActivateCredential recovered.' }),
  }, ['id', 'credential'], { description: 'Proof that the CSR key is the attestation key of a certified TPM; optional.' }),
}, ['serial', 'model', 'batch', 'csr']);

const tpmChallengeRequest = closed({
  serial: ref('Serial'),
  model: ref('ModelName'),
  manufacturer: ref('Name'),
  ekCertificate: str({ description: 'The TPM\'s endorsement key certificate, base64 DER, issued under the registered manufacturer\'s anchors.' }),
  akPublic: str({ description: 'The attestation key\'s TPMT_PUBLIC, base64 (no size prefix): restricted, sign, fixedTPM, fixedParent, sensitiveDataOrigin.' }),
});

const tpmChallenge = closed({
  id: str({ pattern: '^[A-Za-z0-9_-]{22}$' }),
  credentialBlob: str({ description: 'TPM2B_ID_OBJECT, base64: the credentialBlob of TPM2_ActivateCredential.' }),
  encryptedSecret: str({ description: 'TPM2B_ENCRYPTED_SECRET, base64: its secret.' }),
  expiresAt: str({ format: 'date-time' }),
});

const birthCertificate = (statusSchema: JsonObject = {}): JsonObject => closed({
  ...(Object.keys(statusSchema).length > 0 ? { status: statusSchema } : {}),
  certificate: ref('CertificatePem'),
  chain: str({ description: 'The issuing CA\'s certificates in PEM, up to the root.' }),
  certificateSerial: ref('CertificateSerial'),
  device: ref('Device'),
});

export const factoryApi: ApiGroup = {
  tag: { name: 'factory', description: 'Birth certificates (IEEE 802.1AR IDevID) for factory lines; role factory (docs/operators/factory.md).' },
  schemas: {
    BirthCertificateRequest: birthRequest,
    BirthCertificate: birthCertificate(),
  },
  paths: {
    '/factory/v1/birth-certificates': {
      post: {
        operationId: 'requestBirthCertificate',
        summary: 'Issue a birth certificate',
        description: 'Safe to retry: the same serial with the same key returns the existing certificate (200) instead of a new one (201). A token scoped to models may only name those.',
        tags: ['factory'],
        roles: ['factory'],
        body: { schema: ref('BirthCertificateRequest'), limit: '64kb' },
        responses: {
          201: { description: 'Issued now.', schema: ref('BirthCertificate') },
          200: { description: 'The existing certificate of a safe retry.', schema: ref('BirthCertificate') },
        },
        problems: [409],
      },
    },
    '/factory/v1/tpm-challenges': {
      post: {
        operationId: 'createTpmChallenge',
        summary: 'Make a TPM credential-activation challenge for an attestation key',
        description: 'The CA checks the EK certificate against the registered TPM maker and makes a credential (TPM2_MakeCredential) that only that TPM, holding that attestation key, recovers; the birth request then carries it as tpmActivation.',
        tags: ['factory'],
        roles: ['factory'],
        body: { schema: tpmChallengeRequest, limit: '64kb' },
        responses: { 201: { description: 'The challenge, valid 10 minutes.', schema: tpmChallenge } },
        problems: [409],
      },
    },
    '/factory/v1/birth-certificates/batch': {
      post: {
        operationId: 'requestBirthCertificates',
        summary: 'Issue birth certificates for many devices',
        description: 'Each item is all-or-nothing on its own and gets its own result, in order: the birth certificate with its status, or `{status, problem}`.',
        tags: ['factory'],
        roles: ['factory'],
        body: {
          schema: closed({ requests: array({ description: 'A birth-certificate request (BirthCertificateRequest), checked one by one: a bad item fails alone.' }, { minItems: 1, maxItems: 100 }) }),
          limit: '2mb',
        },
        responses: {
          200: {
            description: 'One result per request, in order.',
            schema: closed({
              results: array({
                oneOf: [
                  birthCertificate(int({ enum: [200, 201] })),
                  closed({ status: int({ minimum: 400, maximum: 599 }), problem: ref('Problem') }),
                ],
              }),
            }),
          },
        },
        problems: [],
      },
    },
  },
};
