import { header, pathParam, str, type ApiGroup } from './dsl.ts';
import { PUBLICATION_SERVER } from './servers.ts';

/** A CRL as the publication listener sends it: DER, cacheable until its nextUpdate. */
const crlAnswer = (description: string) => ({
  description,
  content: { 'application/pkix-crl': undefined },
  headers: {
    'Cache-Control': header('public, max-age at most 60 and not past nextUpdate.'),
    ETag: header('The CRL\'s hash.'),
    'Last-Modified': header('Its thisUpdate.'),
    Expires: header('Its nextUpdate.'),
  },
});

export const publicationApi: ApiGroup = {
  tag: {
    name: 'publication',
    description: 'The plain-HTTP listener: CA certificates and CRLs by slug (root, factory, operational, operational-2 after a rollover), the URLs certificates carry. DER bytes, no authentication.',
  },
  paths: {
    '/ca/{file}': {
      servers: [PUBLICATION_SERVER],
      get: {
        tags: ['publication'],
        operationId: 'caCertificate',
        summary: 'A CA certificate, DER (the caIssuers URL)',
        parameters: [pathParam('file', str({ pattern: '^[a-z0-9-]{1,40}\\.crt$' }), 'The CA\'s slug and .crt, e.g. root.crt.')],
        responses: {
          200: {
            description: 'The certificate (Cache-Control: public, max-age=3600).',
            content: { 'application/pkix-cert': undefined },
            headers: { 'Cache-Control': header('public, max-age=3600') },
          },
        },
        problems: [404, 500],
      },
    },
    '/crl/{file}': {
      servers: [PUBLICATION_SERVER],
      get: {
        tags: ['publication'],
        operationId: 'crl',
        summary: 'A CA\'s current CRL, DER (the CRL distribution point)',
        parameters: [pathParam('file', str({ pattern: '^[a-z0-9-]{1,40}\\.crl$' }), 'The CA\'s slug and .crl, e.g. operational.crl.')],
        responses: { 200: crlAnswer('The CRL; caches revalidate at least every minute.') },
        problems: [404, 500],
      },
    },
    '/crl/{slug}/{file}': {
      servers: [PUBLICATION_SERVER],
      get: {
        tags: ['publication'],
        operationId: 'crlShard',
        summary: 'One shard of a CA\'s CRL, DER: complete for the certificates whose CDP names it (its issuingDistributionPoint)',
        parameters: [
          pathParam('slug', str({ pattern: '^[a-z0-9-]{1,40}$' }), 'The CA\'s slug, e.g. operational.'),
          pathParam('file', str({ pattern: '^[0-9]{1,4}\\.crl$' }), 'The shard number and .crl, e.g. 12.crl.'),
        ],
        responses: { 200: crlAnswer('The shard\'s CRL; caches revalidate at least every minute.') },
        problems: [404, 500],
      },
    },
  },
};
