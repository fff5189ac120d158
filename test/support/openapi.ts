import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { openapiDocument } from '../../server/http/openapi/route.ts';
import type { ApiResponse } from './https.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const doc = openapiDocument as Doc;
const ROOT = 'urn:devid-ca:openapi';

/**
 * JSON Schema 2020-12, strict: a schema keyword ajv does not know is a typo
 * in the document. The root holds the paths and components, so a response
 * schema is compiled where it sits and its `#/components/...` references
 * resolve.
 */
const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true });
// ajv-formats is CommonJS: TypeScript types its default import as the module; the plugin is also its own `default`.
addFormats.default(ajv);
ajv.addKeyword('components');
ajv.addKeyword('paths');
ajv.addSchema({ $id: ROOT, paths: doc.paths, components: doc.components });

/** The validator of the schema at a place in the document (a JSON pointer, as a URI fragment). */
function validatorAt(parts: string[]): ValidateFunction {
  const fragment = parts.map((p) => encodeURIComponent(p.replaceAll('~', '~0').replaceAll('/', '~1'))).join('/');
  const validate = ajv.getSchema(`${ROOT}#/${fragment}`);
  if (!validate) throw new Error(`no schema at #/${parts.join('/')} of the OpenAPI document`);
  return validate;
}

/** The document's path template a request path falls under: literal segments before parameters. */
export function templateOf(path: string): string | undefined {
  const segments = path.split('/');
  let best: { template: string; literals: number } | undefined;
  for (const template of Object.keys(doc.paths)) {
    const parts = template.split('/');
    if (parts.length !== segments.length) continue;
    let literals = 0;
    const fits = parts.every((part, i) => {
      if (/^\{[^}]+\}$/.test(part)) return segments[i] !== '';
      literals++;
      return part === segments[i];
    });
    if (fits && (!best || literals > best.literals)) best = { template, literals };
  }
  return best?.template;
}

const mediaType = (answer: ApiResponse) => String(answer.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
const isJson = (type: string) => type === 'application/json' || type.endsWith('+json');

/** The response object for a status, with a components.responses reference followed. */
function responseFor(operation: Doc, status: number): { object: Doc; at: string[] } | undefined {
  const object = operation.responses?.[String(status)] ?? operation.responses?.default;
  if (!object) return undefined;
  const ref: string | undefined = object.$ref;
  if (!ref) return { object, at: [] };
  const name = ref.replace('#/components/responses/', '');
  return { object: doc.components.responses[name], at: ['components', 'responses', name] };
}

/**
 * What is wrong with an answer against the document: a path, method or
 * status it does not describe, a media type it does not list, or a JSON body
 * its schema refuses. Empty when the document describes the answer.
 */
export function answerMismatches(method: string, url: string, answer: ApiResponse): string[] {
  const path = url.split('?')[0]!;
  const template = templateOf(path);
  const verb = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase();
  const operation = template ? doc.paths[template][verb] : undefined;
  const where = `${method} ${url} → ${answer.status}`;
  let response: { object: Doc; at: string[] } | undefined;
  let at: string[];
  if (!operation) {
    // Not an operation of the document: only "no such resource" or "not this method" may answer.
    if (answer.status !== 404 && answer.status !== 405) return [`${where}: no operation ${verb.toUpperCase()} ${template ?? path} in the document`];
    response = responseFor({ responses: { [answer.status]: { $ref: `#/components/responses/Problem${answer.status}` } } }, answer.status);
    at = response!.at;
  } else {
    response = responseFor(operation, answer.status);
    if (!response) return [`${where}: the document lists no ${answer.status} for ${verb.toUpperCase()} ${template} (it lists ${Object.keys(operation.responses).join(', ')})`];
    at = response.at.length > 0 ? response.at : ['paths', template!, verb, 'responses', String(answer.status)];
  }
  const content = response!.object.content as Record<string, { schema?: unknown }> | undefined;
  if (answer.text === '' || method.toUpperCase() === 'HEAD') return [];
  const type = mediaType(answer);
  if (!content) return [`${where}: a ${type || 'body'} answer where the document describes none`];
  const entry = content[type];
  if (!entry) return [`${where}: media type ${type || '(none)'} is not among ${Object.keys(content).join(', ')}`];
  if (!isJson(type)) return [];
  if (answer.json === undefined) return [`${where}: ${type} that does not parse as JSON`];
  if (!entry.schema) return [];
  const validate = validatorAt([...at, 'content', type, 'schema']);
  if (validate(answer.json)) return [];
  return (validate.errors ?? []).map((e) => `${where}: body${e.instancePath} ${e.message} (${e.schemaPath}${e.params ? ` ${JSON.stringify(e.params)}` : ''})`);
}

/** What is wrong with a body as an RFC 7807 problem document of the document's Problem schema. */
export function problemMismatches(body: unknown): string[] {
  const validate = validatorAt(['components', 'schemas', 'Problem']);
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `problem${e.instancePath} ${e.message}`);
}

/**
 * What the document refuses in a JSON request body the server took (a 2xx
 * answer): its request schema must be no stricter than the server.
 */
export function acceptedBodyMismatches(method: string, url: string, status: number, body: string | Buffer | undefined): string[] {
  if (status < 200 || status > 299 || body === undefined) return [];
  const template = templateOf(url.split('?')[0]!);
  const verb = method.toLowerCase();
  const schema = template ? doc.paths[template][verb]?.requestBody?.content?.['application/json']?.schema : undefined;
  if (!schema) return [];
  let value: unknown;
  try {
    value = JSON.parse(body.toString());
  } catch {
    return [];
  }
  const validate = validatorAt(['paths', template!, verb, 'requestBody', 'content', 'application/json', 'schema']);
  if (validate(value)) return [];
  return (validate.errors ?? []).map((e) => `${method} ${url} → ${status}: the server took a request body the document refuses: body${e.instancePath} ${e.message} (${e.schemaPath})`);
}

/** Suites that check every answer against the OpenAPI document (checkAnswersAgainstOpenapi). */
let checking = 0;

/**
 * From here to the end of the enclosing describe, every answer to
 * httpsRequest (so to TestServer.request) must be one the OpenAPI document
 * describes (status, media type, JSON body against its schema), and a JSON
 * body the server took must fit the document's request schema, or the
 * request fails: the document is held to what the server really does.
 */
export function checkAnswersAgainstOpenapi(): void {
  before(() => { checking++; });
  after(() => { checking--; });
}

/** The answer, or an error naming how it (or the body the server took) differs from the document while a suite checks answers. */
export function checkAnswer(method: string, path: string, answer: ApiResponse, sent?: string | Buffer): ApiResponse {
  if (checking === 0) return answer;
  const mismatches = [...answerMismatches(method, path, answer), ...acceptedBodyMismatches(method, path, answer.status, sent)];
  if (mismatches.length > 0) throw new Error(`the answer is not one the OpenAPI document describes:\n  ${mismatches.join('\n  ')}\n  body: ${answer.text.slice(0, 600)}`);
  return answer;
}
