import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** No Docker engine runs here: the compose file is checked with `docker-compose config`. */
describe('docker-compose.yml', () => {
  const compose = (...args: string[]) => execFileSync('docker-compose', ['-f', `${ROOT}docker-compose.yml`, ...args], { encoding: 'utf8' });

  it('is valid and defines two CA replicas behind a load balancer, the migration step and PostgreSQL', () => {
    expect(compose('config', '--services').trim().split('\n').sort()).to.deep.equal(['ca1', 'ca2', 'lb', 'migrate', 'postgres']);
  });

  it('the load balancer sends both ports to both replicas, checked on /readyz; ca2 joins once ca1 is ready', () => {
    const config = compose('config');
    const block = (name: string) => new RegExp(`^ {2}${name}:\n((?: {4}.*\n)+)`, 'm').exec(config)![1]!;
    expect(block('lb')).to.match(/published: (["']?)8443\1/).and.match(/published: (["']?)8080\1/);
    expect(block('ca1')).not.to.match(/published/);
    expect(block('ca2')).to.match(/ca1:\n\s+condition: service_healthy/);
    const haproxy = readFileSync(`${ROOT}deploy/haproxy.cfg`, 'utf8');
    for (const server of ['server ca1 ca1:8443', 'server ca2 ca2:8443', 'server ca1 ca1:8080', 'server ca2 ca2:8080']) expect(haproxy).to.contain(server);
    expect(haproxy).to.contain('GET /readyz');
  });

  it('least privilege: migrate runs as the owner role, the CA only as devid_server, after migrate has finished', () => {
    const config = compose('config');
    const block = (name: string) => new RegExp(`^ {2}${name}:\n((?: {4}.*\n)+)`, 'm').exec(config)![1]!;
    const ca = block('ca1') + block('ca2');
    const migrate = block('migrate');
    expect(new URL(/DEVID_DATABASE_URL: (\S+)/.exec(ca)![1]!).username).to.equal('devid_server');
    expect(ca).not.to.contain('DEVID_DATABASE_OWNER_URL');
    expect(ca).to.match(/migrate:\n\s+condition: service_completed_successfully/);
    expect(new URL(/DEVID_DATABASE_OWNER_URL: (\S+)/.exec(migrate)![1]!).username).to.equal('devid_owner');
    expect(migrate).to.match(/command:\n\s+- migrate/);
    const roles = readFileSync(`${ROOT}deploy/postgres-roles.sh`, 'utf8');
    expect(roles).to.contain('create database devid owner devid_owner').and.contain('create role devid_server login');
  });

  it('the CA service is built from the Dockerfile and points at the PostgreSQL service', () => {
    const config = compose('config');
    const caBlock = /^ {2}ca1:\n((?: {4}.*\n)+)/m.exec(config)![1]!;
    expect(caBlock).to.match(/build:\n\s+context:/);
    expect(caBlock).to.match(/depends_on:\n\s+migrate:/);
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
