import { expect } from 'chai';
import { DomainError } from '../errors/domain-error.ts';
import { PROBLEM, Problem, devidProblems, problemDocument, toProblem } from '../server/http/problem.ts';
import { createLogger } from '../platform/logger.ts';

describe('problem documents (RFC 7807)', () => {
  const logger = createLogger('silent');

  it('extra members never replace type, title, status or detail', () => {
    const problem = new Problem(409, PROBLEM.conflict, 'taken', { type: 'urn:evil', status: 200, title: 'OK', detail: 'fine', serial: 'SN-1' });
    expect(problemDocument(problem)).to.deep.equal({ type: PROBLEM.conflict, title: 'Conflict', status: 409, detail: 'taken', serial: 'SN-1' });
    const fromDomain = toProblem(new DomainError('conflict', 'taken', { status: 201 }), devidProblems, logger, {});
    expect(problemDocument(fromDomain)).to.include({ status: 409, type: PROBLEM.conflict });
  });

  it('a database or HSM that does not answer is 503 with Retry-After; anything unknown is a bare 500', () => {
    const timeout = Object.assign(new Error('Knex: Timeout acquiring a connection'), { name: 'KnexTimeoutError' });
    expect(toProblem(timeout, devidProblems, logger, {})).to.include({ status: 503, type: PROBLEM.unavailable });
    expect(toProblem(timeout, devidProblems, logger, {}).headers).to.deep.equal({ 'Retry-After': '5' });
    expect(toProblem(Object.assign(new Error('canceling statement due to statement timeout'), { code: '57014' }), devidProblems, logger, {}).status).to.equal(503);
    const internal = toProblem(new Error('secret internal detail'), devidProblems, logger, {});
    expect(internal.status).to.equal(500);
    expect(internal.detail).not.to.contain('secret');
  });
});
