import { closed, dateTime, pathParam, ref, str, type ApiGroup } from './dsl.ts';
import { PATTERNS } from './components.ts';

export const supportApi: ApiGroup = {
  tag: { name: 'support', description: 'Vendor support certificates under an approved grant, inside its window; role vendor (docs/operators/lifecycle.md).' },
  paths: {
    '/support/v1/grants/{id}/certificate': {
      post: {
        tags: ['support'],
        roles: ['vendor'],
        operationId: 'issueSupportCertificate',
        summary: 'A support certificate for an approved grant',
        parameters: [pathParam('id', str({ pattern: PATTERNS.grantId }), 'The support grant id: 24 hex digits.')],
        body: { schema: closed({ csr: str({ description: 'The vendor key\'s PKCS#10 request in PEM.' }) }), limit: '64kb' },
        responses: {
          201: {
            description: 'Issued; it expires with the grant\'s window.',
            schema: closed({ certificate: ref('CertificatePem'), chain: str(), serial: ref('CertificateSerial'), notAfter: dateTime() }),
          },
        },
        problems: [404, 409],
      },
    },
  },
};
