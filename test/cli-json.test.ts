import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { runCli, serveEnv, startServe } from './support/cli.ts';
import { makeDeviceKey } from './support/device.ts';
import { httpsRequest } from './support/https.ts';
import { rootPemOf } from './support/publication.ts';

/**
 * Every --json output is one JSON document that ends with a newline, so that
 * a shell prompt or the next document never runs on after it: in a process
 * of its own, and through the admin socket of a running server.
 */
describe('cli: every --json output ends with a newline', function () {
  this.timeout(300_000);
  let dir: string;
  let env: Record<string, string>;
  const SERIAL = 'SN-JSON-1';

  /** Each command that takes --json (the export file and root for verify-export are made first). */
  const commands = () => [
    ['token', 'create', '--role', 'auditor', '--json'],
    ['audit', 'verify', '--json'],
    ['device', 'history', SERIAL, '--json'],
    ['manufacturer', 'show', 'self', '--json'],
    ['audit', 'verify-export', join(dir, 'export.jsonl'), '--root', join(dir, 'root.pem'), '--json'],
  ];
  const expectJsonLines = (where: string) => {
    for (const args of commands()) {
      const result = runCli(args, env);
      expect(result.status, `${where}: ${args.join(' ')}: ${result.stderr}`).to.equal(0);
      expect(result.stdout.endsWith('\n'), `${where}: ${args.join(' ')} ends with a newline`).to.equal(true);
      expect(() => JSON.parse(result.stdout), `${where}: ${args.join(' ')} is one JSON document`).not.to.throw();
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'devid-test-cli-json-'));
    let httpsPort: number;
    let httpPort: number;
    ({ env, httpsPort, httpPort } = await serveEnv(join(dir, 'data')));
    const serving = await startServe(env, ['--init-if-empty']);
    try {
      const rootPem = await rootPemOf(httpPort);
      writeFileSync(join(dir, 'root.pem'), rootPem);
      const token = (role: string, ...extra: string[]) => JSON.parse(runCli(['token', 'create', '--role', role, '--json', ...extra], env).stdout).token as string;
      expect(runCli(['model', 'm-json', '--hw-type', '1.3.6.1.4.1.99999.9', '--manufacturer', 'Json Devices'], env).status).to.equal(0);
      const born = await httpsRequest(httpsPort, rootPem, 'POST', '/factory/v1/birth-certificates', { authorization: `Bearer ${token('factory', '--line', 'l1')}`, 'content-type': 'application/json' },
        JSON.stringify({ serial: SERIAL, model: 'm-json', batch: 'b1', csr: (await makeDeviceKey()).csrPem }), 'localhost');
      expect(born.status, born.text).to.equal(201);
      expect(runCli(['audit', 'export', '--out', join(dir, 'export.jsonl')], env).status).to.equal(0);
      expectJsonLines('through the running server');
    } finally {
      await serving.stop();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('in a process of its own and through the admin socket', () => {
    expectJsonLines('in its own process');
  });
});
