import { open, str, type ApiGroup } from './dsl.ts';
import { PUBLICATION_SERVER } from './servers.ts';

/**
 * ACME, EST and OCSP are their RFCs': referenced, not described again. Only
 * their entry points are here, so a client finds them.
 */
export const acmeApi: ApiGroup = {
  tag: {
    name: 'acme',
    description: 'ACME (RFC 8555) with device-attest-01 and the permanent-identifier and hardware-module identifiers of draft-ietf-acme-device-attest-09, and ACME Renewal Information (RFC 9773), under /acme/ on the HTTPS listener: directory, new-nonce, new-account, acct/{id}, acct/{id}/orders, new-order, order/{id}, order/{id}/finalize, authz/{id}, chall/{id}, cert/{serial}, revoke-cert, key-change, renewal-info/{certId}. JWS requests and urn:ietf:params:acme:error problem documents as the RFCs define them.',
    externalDocs: { url: 'https://www.rfc-editor.org/rfc/rfc8555', description: 'RFC 8555: Automatic Certificate Management Environment (ACME)' },
  },
  paths: {
    '/acme/directory': {
      get: {
        tags: ['acme'],
        operationId: 'acmeDirectory',
        summary: 'The ACME directory (RFC 8555 section 7.1.1; renewalInfo: RFC 9773)',
        responses: { 200: { description: 'The directory: the URLs of the other ACME resources.', schema: open({ newNonce: str({ format: 'uri' }), newAccount: str({ format: 'uri' }), newOrder: str({ format: 'uri' }), revokeCert: str({ format: 'uri' }), keyChange: str({ format: 'uri' }) }) } },
        problems: [],
      },
    },
  },
};

export const ocspApi: ApiGroup = {
  tag: {
    name: 'ocsp',
    description: 'OCSP (RFC 6960) on the plain-HTTP listener at /ocsp: POST application/ocsp-request, or GET /ocsp/{base64 request}; answers application/ocsp-response.',
    externalDocs: { url: 'https://www.rfc-editor.org/rfc/rfc6960', description: 'RFC 6960: X.509 Internet Public Key Infrastructure Online Certificate Status Protocol (OCSP)' },
  },
  paths: {
    '/ocsp': {
      servers: [PUBLICATION_SERVER],
      post: {
        tags: ['ocsp'],
        operationId: 'ocsp',
        summary: 'An OCSP request (RFC 6960 appendix A.1)',
        responses: { 200: { description: 'The OCSP response.', content: { 'application/ocsp-response': undefined } } },
        problems: [],
      },
    },
  },
};

export const estApi: ApiGroup = {
  tag: {
    name: 'est',
    description: 'EST (RFC 7030) on the HTTPS listener at /.well-known/est/ and /.well-known/est/{device class}/: GET cacerts and csrattrs, POST simpleenroll and simplereenroll (application/pkcs10, authenticated by a TLS 1.3 client certificate, the CSR bound to the session by tls-exporter, or sent by a gateway for a device behind it), and POST nonce (application/json {"serial"}, a gateway\'s freshness nonce for a relayed attestation, answered {"nonce", "expiry"}); answers base64 certs-only CMS, refusals a status with a text/plain reason (docs/device-makers/est.md, docs/operators/gateways.md).',
    externalDocs: { url: 'https://www.rfc-editor.org/rfc/rfc7030', description: 'RFC 7030: Enrollment over Secure Transport' },
  },
  paths: {
    '/.well-known/est/cacerts': {
      get: {
        tags: ['est'],
        operationId: 'estCaCerts',
        summary: 'The operational CA certificate and the root (RFC 7030 section 4.1)',
        responses: { 200: { description: 'A base64 certs-only CMS SignedData.', content: { 'application/pkcs7-mime': undefined } } },
        problems: [],
      },
    },
  },
};
