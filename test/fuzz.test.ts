import { expect } from 'chai';
import { adminSocketCases, fuzzCases } from './fuzz/cases.ts';
import { fuzzAdminSocket, runFuzz, tableCounts } from './fuzz/harness.ts';
import { startFuzzServer, type FuzzServer } from './fuzz/setup.ts';

/** The short run of `npm run fuzz`: every endpoint and the admin socket, a new seed each day so the suite does not grow blind to one set. */
describe('fuzz (short): every endpoint and the admin socket', function () {
  this.timeout(300_000);
  let fuzz: FuzzServer;
  before(async () => {
    fuzz = await startFuzzServer();
  });
  after(async () => fuzz?.server.close());

  it('800 hostile requests and 60 admin-socket lines: no 5xx, no hang, nothing written, still up', async () => {
    const seed = Number(new Date().toISOString().slice(0, 10).replace(/-/g, ''));
    const before = await tableCounts(fuzz.server);
    const report = await runFuzz(fuzz.server, fuzzCases(fuzz.targets, 800, seed), fuzz.tokens);
    const admin = await fuzzAdminSocket(fuzz.server.env.dataDir, adminSocketCases(60, seed));
    expect([...report.failures, ...admin], `seed ${seed}`).to.deep.equal([]);
    expect(await tableCounts(fuzz.server)).to.deep.equal(before);
    expect((await fuzz.server.request('GET', '/healthz')).status).to.equal(200);
  });
});
