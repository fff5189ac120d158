import { closed, header, record, str, type ApiGroup } from './dsl.ts';
import { API_SERVER, PUBLICATION_SERVER } from './servers.ts';

export const healthApi: ApiGroup = {
  tag: { name: 'health', description: 'Liveness and readiness probes, on both listeners; no authentication.' },
  schemas: {
    Readiness: closed({
      status: str({ enum: ['ready', 'unavailable'] }),
      database: str({ description: '"ok", or what failed.' }),
      hsm: str({ description: '"ok", or what failed.' }),
      signing: str({ description: '"ok", or what the CA cannot do without its HSM.' }),
      crls: str({ description: '"ok", or which CRL is not fresh.' }),
      witnesses: record(str({ description: '"ok", "failing: <why>" or "behind: ..."' }), { description: 'Each witness of the Merkle log (DEVID_WITNESSES), when any is configured: named, never a reason for a 503.' }),
    }, ['status', 'database', 'hsm', 'signing', 'crls']),
  },
  paths: {
    '/healthz': {
      servers: [API_SERVER, PUBLICATION_SERVER],
      get: {
        tags: ['health'],
        operationId: 'healthz',
        summary: 'The process answers',
        responses: { 200: { description: 'Alive.', schema: closed({ status: str({ const: 'ok' }) }) } },
        problems: [],
      },
    },
    '/readyz': {
      servers: [API_SERVER, PUBLICATION_SERVER],
      get: {
        tags: ['health'],
        operationId: 'readyz',
        summary: 'The CA can do its work: the database and the HSM answer and the CRLs are fresh',
        responses: {
          200: { description: 'Ready.', schema: { $ref: '#/components/schemas/Readiness' } },
          503: { description: 'Not ready: what failed (Retry-After: 5); a load balancer takes the node out.', schema: { $ref: '#/components/schemas/Readiness' }, headers: { 'Retry-After': header('Seconds.') } },
        },
        problems: [],
      },
    },
  },
};
