import express, { type RequestHandler } from 'express';
import { malformed } from '../../errors/domain-error.ts';
import { PROBLEM, Problem, sendProblem } from './problem.ts';

/** POST and PUT bodies of the role APIs must be JSON; anything else is 415 before parsing. */
export const requireJson: RequestHandler = (req, res, next) => {
  if (!req.is('application/json')) {
    return sendProblem(res, new Problem(415, PROBLEM.unsupportedMediaType, 'send the body as application/json'));
  }
  next();
};

/** The content-type check and a JSON parser with this endpoint's size limit. */
export function jsonBody(limit: string): RequestHandler[] {
  return [requireJson, express.json({ limit })];
}

/** A JSON object body with no fields but the given ones; anything else is malformed. */
export function bodyFields<K extends string>(body: unknown, fields: readonly K[]): Partial<Record<K, unknown>> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw malformed(`the body must be a JSON object {${fields.map((f) => `"${f}"`).join(', ')}}`);
  }
  const unknown = Object.keys(body).find((key) => !(fields as readonly string[]).includes(key));
  if (unknown !== undefined) throw malformed(`unknown field ${JSON.stringify(unknown.slice(0, 64))}`);
  return body as Partial<Record<K, unknown>>;
}
