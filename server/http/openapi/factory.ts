import { array, closed, int, ref, str, type ApiGroup, type JsonObject } from './dsl.ts';

const birthRequest = closed({
  serial: ref('Serial'),
  model: ref('ModelName'),
  batch: ref('Batch'),
  csr: str({ minLength: 1, description: 'The device\'s PKCS#10 request: PEM, or base64url DER.' }),
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
