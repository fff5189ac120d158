import { expect } from 'chai';
import { ConfigError, DEFAULT_TRUST_DOMAIN, loadConfig, loopbackWarnings } from '../server/config.ts';
import { COSIGNATURE_TYPE, verifierKey } from '../registry/tlog/signed-note.ts';

const env = (extra: Record<string, string>) => ({ DEVID_DATA_DIR: '/tmp/devid-config-test', ...extra });

describe('configuration: the SPIFFE trust domain is a fully qualified domain name (RFC 5280 URI hosts)', () => {
  it('defaults to the public host when it is a domain name, else to devid.internal', () => {
    expect(loadConfig(env({ DEVID_PUBLIC_HOST: 'ca.example.com' })).trustDomain).to.equal('ca.example.com');
    for (const host of ['localhost', '127.0.0.1', 'ca', '::1']) {
      expect(loadConfig(env({ DEVID_PUBLIC_HOST: host })).trustDomain, host).to.equal(DEFAULT_TRUST_DOMAIN);
    }
    expect(DEFAULT_TRUST_DOMAIN).to.equal('devid.internal');
  });

  it('refuses a DEVID_TRUST_DOMAIN that is a single label or an address, saying why', () => {
    for (const bad of ['localhost', '10.0.0.1', 'devices', 'a..b', 'x.123']) {
      expect(() => loadConfig(env({ DEVID_TRUST_DOMAIN: bad })), bad).to.throw(ConfigError, /fully qualified domain name/);
    }
    expect(loadConfig(env({ DEVID_TRUST_DOMAIN: 'Devices.Example.COM' })).trustDomain).to.equal('devices.example.com');
  });

  it('serve warns about a recorded trust domain that is no domain name (an installation from before)', () => {
    const warnings = loopbackWarnings({ publicHost: 'ca.example.com', trustDomain: 'localhost', httpBaseUrl: 'http://pki.example.com' });
    expect(warnings.join('\n')).to.match(/trust domain localhost .*identity set --trust-domain/);
    expect(loopbackWarnings({ publicHost: 'ca.example.com', trustDomain: 'ca.example.com', httpBaseUrl: 'http://pki.example.com' })).to.deep.equal([]);
  });

  it('DEVID_CRL_SHARDS names the shards of each intermediate\'s CRL; one number is the operational CA\'s', () => {
    expect(loadConfig(env({})).crl.shards).to.deep.equal({});
    expect(loadConfig(env({ DEVID_CRL_SHARDS: '64' })).crl.shards).to.deep.equal({ operational: 64 });
    expect(loadConfig(env({ DEVID_CRL_SHARDS: 'operational=16, factory=4' })).crl.shards).to.deep.equal({ operational: 16, factory: 4 });
    for (const bad of ['root=4', 'operational=2000', 'x', 'operational=-1', '4,']) expect(() => loadConfig(env({ DEVID_CRL_SHARDS: bad })), bad).to.throw(ConfigError, /DEVID_CRL_SHARDS/);
  });

  it('DEVID_ASSIGNER_OID is unset by default and, when set, a dotted OID whose arcs are below 2^28', () => {
    expect(loadConfig(env({})).assignerOid).to.equal(undefined);
    expect(loadConfig(env({ DEVID_ASSIGNER_OID: '1.3.6.1.4.1.99999.42' })).assignerOid).to.equal('1.3.6.1.4.1.99999.42');
    for (const bad of ['2.25.329800735698586629295641978511506172918', '1.3.06', 'x', '1.40.1']) expect(() => loadConfig(env({ DEVID_ASSIGNER_OID: bad })), bad).to.throw(ConfigError, /DEVID_ASSIGNER_OID/);
  });

  it('DEVID_ACME_ANONYMOUS_RATE is a number of requests per second', () => {
    expect(loadConfig(env({})).acmeAnonymousPerSecond).to.equal(20);
    expect(loadConfig(env({ DEVID_ACME_ANONYMOUS_RATE: '2.5' })).acmeAnonymousPerSecond).to.equal(2.5);
    for (const bad of ['0', 'fast', '-1', '1e9']) expect(() => loadConfig(env({ DEVID_ACME_ANONYMOUS_RATE: bad })), bad).to.throw(ConfigError);
  });

  it('DEVID_WITNESSES lists each witness as its URL and cosignature verifier key (type 0x04), comma-separated', () => {
    const raw = Buffer.alloc(32, 9);
    const w1 = verifierKey('w1.example/w', raw, COSIGNATURE_TYPE);
    const w2 = verifierKey('w2.example/w', Buffer.alloc(32, 3), COSIGNATURE_TYPE);
    expect(loadConfig(env({})).witnesses).to.equal(undefined);
    const parsed = loadConfig(env({ DEVID_WITNESSES: `https://w1.example/witness/ ${w1}, http://10.0.0.2:8090 ${w2}` })).witnesses!;
    expect(parsed.map((w) => [w.url, w.key.name])).to.deep.equal([['https://w1.example/witness', 'w1.example/w'], ['http://10.0.0.2:8090', 'w2.example/w']]);
    const logKey = verifierKey('w1.example/w', raw);
    for (const bad of [`ftp://w1.example ${w1}`, 'https://w1.example', `https://w1.example ${logKey}`, `https://w1.example ${w1} extra`, `https://w1.example ${w1}, https://w3.example ${w1}`,
      `https://w1.example ${w1.replace(/\+[0-9a-f]{8}\+/, '+00000000+')}`, `https://user@w1.example ${w1}`, `not-a-url ${w1}`]) {
      expect(() => loadConfig(env({ DEVID_WITNESSES: bad })), bad).to.throw(ConfigError, /DEVID_WITNESSES/);
    }
    const mlDsa = `w6.example/w+00000000+${Buffer.concat([Buffer.of(0x06), Buffer.alloc(1312, 1)]).toString('base64')}`;
    expect(() => loadConfig(env({ DEVID_WITNESSES: `https://w6.example ${mlDsa}` }))).to.throw(ConfigError, /ML-DSA-44 .*type 0x06/);
  });

  it('DEVID_ANDROID_STATUS_URL is Google\'s list unless set to another http(s) URL', () => {
    expect(loadConfig(env({})).androidStatusUrl).to.equal('https://android.googleapis.com/attestation/status');
    expect(loadConfig(env({ DEVID_ANDROID_STATUS_URL: 'http://mirror.internal/status' })).androidStatusUrl).to.equal('http://mirror.internal/status');
    for (const bad of ['status', 'ftp://x/status', 'https://user@x/status', 'https://x/status#a']) expect(() => loadConfig(env({ DEVID_ANDROID_STATUS_URL: bad })), bad).to.throw(ConfigError, /DEVID_ANDROID_STATUS_URL/);
  });
});
