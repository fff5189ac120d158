import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** No Docker engine runs here: the compose file is checked with `docker-compose config` (SPEC/issue 3). */
describe('docker-compose.yml', () => {
  const compose = (...args: string[]) => execFileSync('docker-compose', ['-f', `${ROOT}docker-compose.yml`, ...args], { encoding: 'utf8' });

  it('is valid and defines the CA and PostgreSQL services', () => {
    expect(compose('config', '--services').trim().split('\n').sort()).to.deep.equal(['ca', 'postgres']);
  });

  it('the CA service is built from the Dockerfile and points at the PostgreSQL service', () => {
    const config = compose('config');
    const caBlock = /^ {2}ca:\n((?: {4}.*\n)+)/m.exec(config)![1]!;
    expect(caBlock).to.match(/build:\n\s+context:/);
    expect(caBlock).to.match(/depends_on:\n\s+postgres:/);
    const url = /DEVID_DATABASE_URL: (\S+)/.exec(caBlock)![1]!;
    expect(new URL(url).hostname).to.equal('postgres');
    expect(new URL(url).pathname).to.equal('/devid');
  });

  it('the Dockerfile installs SoftHSM2 and starts the CA', () => {
    const dockerfile = readFileSync(`${ROOT}Dockerfile`, 'utf8');
    expect(dockerfile).to.match(/apt-get install[^\n]*softhsm2/);
    expect(dockerfile).to.contain('npm ci');
    expect(dockerfile).to.match(/ENTRYPOINT \["\.\/bin\/devid-ca"\]/);
  });
});
