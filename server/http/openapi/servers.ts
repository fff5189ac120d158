import type { JsonObject } from './dsl.ts';

/** The HTTPS listener (DEVID_LISTEN, named by DEVID_PUBLIC_HOST): the role APIs, the console, ACME. */
export const API_SERVER: JsonObject = {
  url: 'https://{publicHost}',
  description: 'The CA\'s HTTPS API (DEVID_PUBLIC_HOST).',
  variables: { publicHost: { default: 'ca.example.com', description: 'DEVID_PUBLIC_HOST, with its port if not 443.' } },
};

/** The plain-HTTP listener (DEVID_HTTP_LISTEN, named by DEVID_HTTP_BASE_URL): CA certificates, CRLs, OCSP. */
export const PUBLICATION_SERVER: JsonObject = {
  url: '{httpBaseUrl}',
  description: 'The plain-HTTP publication listener (DEVID_HTTP_BASE_URL): what certificates name in caIssuers, CRL distribution points and OCSP.',
  variables: { httpBaseUrl: { default: 'http://pki.example.com', description: 'DEVID_HTTP_BASE_URL.' } },
};
