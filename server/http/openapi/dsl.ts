/**
 * Small builders for the OpenAPI 3.1 document (server/http/openapi/document.ts):
 * JSON Schema 2020-12 fragments, references to the shared components, and
 * operations with the problem documents they answer. Plain JSON values, so
 * the document is what GET /openapi.json sends.
 */

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

/** A schema of components.schemas. */
export const ref = (name: string): JsonObject => ({ $ref: `#/components/schemas/${name}` });

/** A closed object: the code builds it field by field, so no other member appears. */
export function closed(properties: Record<string, JsonObject>, required: string[] = Object.keys(properties), extra: JsonObject = {}): JsonObject {
  return { type: 'object', properties, required, additionalProperties: false, ...extra };
}

/** An object that may carry more members than it lists. */
export function open(properties: Record<string, JsonObject>, required: string[] = Object.keys(properties), extra: JsonObject = {}): JsonObject {
  return { type: 'object', properties, required, ...extra };
}

export const str = (extra: JsonObject = {}): JsonObject => ({ type: 'string', ...extra });
export const int = (extra: JsonObject = {}): JsonObject => ({ type: 'integer', ...extra });
export const bool = (extra: JsonObject = {}): JsonObject => ({ type: 'boolean', ...extra });
export const array = (items: JsonObject, extra: JsonObject = {}): JsonObject => ({ type: 'array', items, ...extra });
export const nullable = (schema: JsonObject): JsonObject => ({ anyOf: [schema, { type: 'null' }] });
export const dateTime = (extra: JsonObject = {}): JsonObject => ({ type: 'string', format: 'date-time', ...extra });
/** A map from names to values of one schema. */
export const record = (values: JsonObject, extra: JsonObject = {}): JsonObject => ({ type: 'object', additionalProperties: values, ...extra });
/** A body with no fields: `{}`. */
export const empty = (): JsonObject => ({ type: 'object', additionalProperties: false, maxProperties: 0 });

/**
 * Free text as registry/identifiers.ts checkText takes it: 1 to `max`
 * characters, not only blanks, no control characters (tab and newline
 * allowed in multi-line fields).
 */
export function text(max: number, multiline = false): JsonObject {
  const controls = multiline ? '\\u0000-\\u0008\\u000b-\\u001f\\u007f' : '\\u0000-\\u001f\\u007f';
  return { type: 'string', minLength: 1, maxLength: max, pattern: `^[^${controls}]*\\S[^${controls}]*$` };
}

/** The problem documents of components.responses, by status. */
export type ProblemStatus = 400 | 401 | 403 | 404 | 405 | 409 | 410 | 413 | 415 | 431 | 500 | 503;

export interface ResponseSpec {
  description: string;
  schema?: JsonObject;
  /** Other media types than application/json, with their schemas (or none for bytes). */
  content?: Record<string, JsonObject | undefined>;
  headers?: Record<string, JsonObject>;
}

export interface OperationSpec {
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  /** Roles that may call it with a bearer token (or a console session); none: no authentication. */
  roles?: string[];
  /** Security requirements other than a role's (the console session routes). */
  security?: JsonObject[];
  parameters?: JsonObject[];
  /** The JSON body and the limit the route's parser sets. */
  body?: { schema: JsonObject; limit: string; required?: boolean; description?: string };
  responses: Record<number, ResponseSpec>;
  problems: ProblemStatus[];
}

const header = (description: string, schema: JsonObject = str()): JsonObject => ({ description, schema });
export { header };

function response(spec: ResponseSpec): JsonObject {
  const content: JsonObject = {};
  if (spec.schema) content['application/json'] = { schema: spec.schema };
  for (const [type, schema] of Object.entries(spec.content ?? {})) content[type] = schema ? { schema } : {};
  return {
    description: spec.description,
    ...(spec.headers ? { headers: spec.headers } : {}),
    ...(Object.keys(content).length > 0 ? { content } : {}),
  };
}

/** The roles a console session can hold (server/http/console-session.ts CONSOLE_ROLES). */
const CONSOLE_ROLES = ['operator', 'auditor'];

/**
 * One operation object: security from the roles (a bearer token; for
 * operator and auditor routes also a console session, which needs the CSRF
 * header on anything but GET), the body with its limit, success responses
 * and problem documents.
 */
export function operation(method: string, spec: OperationSpec): JsonObject {
  const responses: JsonObject = {};
  for (const [status, r] of Object.entries(spec.responses)) responses[status] = response(r);
  const problems = new Set<ProblemStatus>(spec.problems);
  if (spec.roles) for (const s of [401, 403, 500, 503] as const) problems.add(s);
  if (spec.body) for (const s of [400, 413, 415] as const) problems.add(s);
  // Node refuses headers over the limit before any route sees them, whatever the path (server/http/client-errors.ts).
  problems.add(431);
  for (const status of [...problems].sort()) responses[String(status)] = { $ref: `#/components/responses/Problem${status}` };
  const security: Json[] = [];
  if (spec.roles) {
    security.push({ bearerToken: spec.roles });
    const sessionRoles = spec.roles.filter((role) => CONSOLE_ROLES.includes(role));
    if (sessionRoles.length > 0) security.push(method === 'get' ? { consoleSession: sessionRoles } : { consoleSession: sessionRoles, csrfToken: [] });
  }
  return {
    operationId: spec.operationId,
    summary: spec.summary,
    ...(spec.description ? { description: spec.description } : {}),
    tags: spec.tags,
    security: spec.security ?? security,
    ...(spec.parameters ? { parameters: spec.parameters } : {}),
    ...(spec.body ? {
      requestBody: {
        required: spec.body.required ?? true,
        description: `${spec.body.description ? `${spec.body.description} ` : ''}At most ${spec.body.limit}; other content types are refused with 415.`,
        content: { 'application/json': { schema: spec.body.schema } },
        'x-devid-body-limit': spec.body.limit,
      },
    } : {}),
    responses,
  };
}

/** A path parameter with its schema. */
export const pathParam = (name: string, schema: JsonObject, description: string): JsonObject => ({ name, in: 'path', required: true, description, schema });
/** A query parameter. */
export const queryParam = (name: string, schema: JsonObject, description: string, required = false): JsonObject => ({ name, in: 'query', required, description, schema });

export type HttpMethod = 'get' | 'put' | 'post' | 'delete';

/** A group of paths (one API): path to method to operation, and the schemas it adds to components. */
export interface ApiGroup {
  tag: { name: string; description: string; externalDocs?: { url: string; description?: string } };
  paths: Record<string, Partial<Record<HttpMethod, OperationSpec>> & { servers?: JsonObject[] }>;
  schemas?: Record<string, JsonObject>;
}
