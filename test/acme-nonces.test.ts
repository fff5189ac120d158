import { expect } from 'chai';
import { MemoryNonces, NONCE_LIFETIME_MS } from '../enroll/acme/nonce.ts';
import type { AcmeAccountRecord } from '../store/types.ts';

/** The in-memory nonce book PGlite servers use: single use, expiry, a bound on memory. */
describe('ACME nonces in memory (one process on its database)', () => {
  const account = { id: 'acct-1', status: 'valid' } as AcmeAccountRecord;
  const reads: string[] = [];
  const store = { acme: { account: async (id: string) => { reads.push(id); return id === account.id ? account : undefined; } } } as never;
  const at = (ms: number) => new Date(Date.UTC(2026, 11, 7) + ms);

  it('a nonce is good once: redeemed it is gone, and the next one handed out is good', async () => {
    const book = new MemoryNonces(store);
    await book.issue('n1', at(0));
    expect(await book.redeem('n1', 'n2', at(1), null)).to.deep.equal({ fresh: true, account: undefined });
    expect((await book.redeem('n1', 'n3', at(2), null)).fresh).to.equal(false);
    expect((await book.redeem('n2', 'n4', at(3), null)).fresh).to.equal(true);
    expect((await book.redeem('never-issued', 'n5', at(4), null)).fresh).to.equal(false);
  });

  it('reads the kid\'s account only for a fresh nonce', async () => {
    const book = new MemoryNonces(store);
    reads.length = 0;
    await book.issue('n1', at(0));
    expect((await book.redeem('n1', 'n2', at(1), 'acct-1')).account).to.equal(account);
    expect((await book.redeem('n1', 'n3', at(2), 'acct-1')).account).to.equal(undefined);
    expect(reads).to.deep.equal(['acct-1']);
  });

  it('an expired nonce is refused; a full book lets its oldest go', async () => {
    const book = new MemoryNonces(store, 3);
    await book.issue('old', at(0));
    expect((await book.redeem('old', 'n1', at(NONCE_LIFETIME_MS + 1), null)).fresh).to.equal(false);
    for (const value of ['a', 'b', 'c', 'd']) await book.issue(value, at(NONCE_LIFETIME_MS + 2));
    expect((await book.redeem('a', 'e', at(NONCE_LIFETIME_MS + 3), null)).fresh, 'the oldest left').to.equal(false);
    expect((await book.redeem('d', 'f', at(NONCE_LIFETIME_MS + 3), null)).fresh).to.equal(true);
  });
});
