import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { DomainError } from '../errors/domain-error.ts';
import { domainProblem } from '../enroll/acme/problems.ts';
import { domainEstError } from '../enroll/est/errors.ts';
import { enrollmentError } from '../registry/enrollment/errors.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Every relative import of the TypeScript files under `folder`, as [importer, imported] paths from the repository root. */
function importsUnder(folder: string): Array<[string, string]> {
  const found: Array<[string, string]> = [];
  for (const entry of readdirSync(join(ROOT, folder), { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const file = join(entry.parentPath, entry.name);
    for (const match of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\b[^;]*?from '(\.[^']+)'/gm)) {
      found.push([relative(ROOT, file), relative(ROOT, normalize(join(dirname(file), match[1]!)))]);
    }
  }
  return found;
}

describe('layers (docs/developers/enrollment-core.md): imports only go down', () => {
  const upward = (folder: string, above: string[]) => importsUnder(folder).filter(([, imported]) => above.some((a) => imported.startsWith(`${a}/`)));

  it('pki/ imports neither registry/, enroll/ nor server/', () => {
    expect(importsUnder('pki').map(([, imported]) => imported)).to.include('ca/digest.ts');
    expect(upward('pki', ['registry', 'enroll', 'server'])).to.deep.equal([]);
  });

  it('registry/ imports neither enroll/ nor server/', () => {
    expect(upward('registry', ['enroll', 'server'])).to.deep.equal([]);
  });

  it('the front ends (enroll/) and publication (publish/) import nothing from server/: the logger, body reader and problem types are in platform/', () => {
    expect(upward('enroll', ['server'])).to.deep.equal([]);
    expect(upward('publish', ['server', 'enroll'])).to.deep.equal([]);
    expect(importsUnder('enroll').map(([, imported]) => imported)).to.include('platform/read-body.ts');
  });

  it('the bottom (ca/, store/, hsm/, errors/, platform/) imports nothing above it', () => {
    const above = ['server', 'enroll', 'publish', 'registry', 'pki'];
    for (const folder of ['ca', 'store', 'hsm', 'errors', 'platform']) expect(upward(folder, above), folder).to.deep.equal([]);
    expect(importsUnder('platform').filter(([, imported]) => !imported.startsWith('platform/')), 'platform/ stands alone').to.deep.equal([]);
  });

  it('no import cycle between the source files: every folder can be read bottom up', () => {
    const folders = ['ca', 'client', 'enroll', 'errors', 'hsm', 'pki', 'platform', 'publish', 'registry', 'server', 'store'];
    const edges = new Map<string, string[]>();
    for (const [importer, imported] of folders.flatMap((f) => importsUnder(f))) edges.set(importer, [...(edges.get(importer) ?? []), imported]);
    expect(edges.get('enroll/acme/front-end.ts'), 'the graph is read').to.include('enroll/acme/jws.ts');
    const cycles: string[] = [];
    const state = new Map<string, 'open' | 'done'>();
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'open') {
        cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '));
        return;
      }
      state.set(file, 'open');
      for (const next of edges.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of edges.keys()) visit(file, []);
    expect(cycles).to.deep.equal([]);
  });

  it('the registration authority knows no ACME: its errors carry codes the ACME front end maps in one place', () => {
    expect(upward('registry/enrollment', ['enroll', 'server', 'publish'])).to.deep.equal([]);
    const cases: Array<[DomainError, string, number]> = [
      [enrollmentError.badAttestation('check 3 (sig)', 'no'), 'badAttestationStatement', 400],
      [enrollmentError.alreadyReplaced('forked'), 'alreadyReplaced', 409],
      [enrollmentError.basisChanged('attest again'), 'unauthorized', 403],
      [enrollmentError.rejectedIdentifier('unknown'), 'rejectedIdentifier', 400],
      [enrollmentError.badCsr('bad'), 'badCSR', 400],
      [enrollmentError.malformed('bad'), 'malformed', 400],
    ];
    for (const [error, type, status] of cases) {
      const problem = domainProblem(error);
      expect([problem.type, problem.status], error.detail).to.deep.equal([type, status]);
    }
    expect(domainProblem(enrollmentError.badAttestation('check 3 (sig)', 'no')).detail).to.equal('check 3 (sig): no');
  });

  it('EST maps the same domain errors in one place: 400 bad CSR, 403 not allowed, 409 fork (RFC 7030 4.2.3)', () => {
    const cases: Array<[DomainError, number]> = [
      [enrollmentError.badCsr('bad'), 400], [enrollmentError.malformed('bad'), 400], [enrollmentError.rejectedIdentifier('suspended'), 403],
      [enrollmentError.badAttestation('check 5 (firmware)', 'no'), 403], [enrollmentError.basisChanged('revoked'), 403], [enrollmentError.alreadyReplaced('forked'), 409],
      [new DomainError('forbidden', 'no'), 403],
    ];
    for (const [error, status] of cases) expect(domainEstError(error).status, error.detail).to.equal(status);
  });
});
