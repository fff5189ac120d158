import { acmeApi, estApi, ocspApi } from './protocols.ts';
import { auditApi } from './audit.ts';
import { problemResponses, securitySchemes, sharedSchemas } from './components.ts';
import { consoleApi } from './console.ts';
import { operation, closed, str, type ApiGroup, type HttpMethod, type JsonObject } from './dsl.ts';
import { factoryApi } from './factory.ts';
import { firmwareApi } from './firmware.ts';
import { healthApi } from './health.ts';
import { manufacturersApi } from './manufacturers.ts';
import { operatorApi } from './operator.ts';
import { publicationApi } from './publication.ts';
import { API_SERVER } from './servers.ts';
import { supportApi } from './support.ts';
import { tlogApi } from './tlog.ts';

/** GET /openapi.json itself. */
const openapiApi: ApiGroup = {
  tag: { name: 'openapi', description: 'This document.' },
  paths: {
    '/openapi.json': {
      get: {
        tags: ['openapi'],
        operationId: 'openapi',
        summary: 'This OpenAPI 3.1 description of the CA\'s HTTP APIs',
        responses: { 200: { description: 'The document (Cache-Control: public, max-age=3600; ETag).', schema: closed({ openapi: str({ pattern: '^3\\.1\\.' }) }, ['openapi'], { additionalProperties: true }) } },
        problems: [405],
      },
    },
  },
};

/** Every API group, in the order the document lists them. */
export const API_GROUPS: readonly ApiGroup[] = [
  factoryApi, operatorApi, firmwareApi, manufacturersApi, auditApi, supportApi, consoleApi, healthApi, publicationApi, tlogApi, acmeApi, estApi, ocspApi, openapiApi,
];

const METHODS: readonly HttpMethod[] = ['get', 'put', 'post', 'delete'];

/** The OpenAPI 3.1 document of the CA's HTTP APIs, built from the groups. */
export function buildOpenapiDocument(version: string): JsonObject {
  const paths: JsonObject = {};
  const schemas: JsonObject = { ...sharedSchemas };
  for (const group of API_GROUPS) {
    Object.assign(schemas, group.schemas ?? {});
    for (const [path, item] of Object.entries(group.paths)) {
      if (paths[path]) throw new Error(`the OpenAPI path ${path} is in two groups`);
      const built: JsonObject = item.servers ? { servers: item.servers } : {};
      for (const method of METHODS) {
        const spec = item[method];
        if (spec) built[method] = operation(method, spec);
      }
      paths[path] = built;
    }
  }
  return {
    openapi: '3.1.1',
    info: {
      title: 'devid-ca',
      version,
      summary: 'Private certificate authority for device fleets.',
      description: [
        'The HTTP APIs of devid-ca: the factory, operator, manufacturer, audit and vendor APIs, the operator console\'s session and read models, health probes, and the plain-HTTP publication of CA certificates, CRLs and signed firmware manifests.',
        'Errors are RFC 7807 problem documents (application/problem+json) with urn:devid-ca:problem: types. Requests Node refuses before routing get one too, on any path: headers over 16 KiB (431, listed on every operation) and a request that is not HTTP (400).',
        'ACME (RFC 8555, RFC 9773), EST (RFC 7030) and OCSP (RFC 6960) are their RFCs\' and are only referenced here (tags acme, est and ocsp).',
      ].join('\n\n'),
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    servers: [API_SERVER],
    tags: API_GROUPS.map((g) => g.tag as unknown as JsonObject),
    paths,
    components: { schemas, responses: problemResponses, securitySchemes },
  };
}
