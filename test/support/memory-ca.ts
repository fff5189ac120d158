import { KeyCeremony, createHierarchy, type Hierarchy } from '../../ca/hierarchy.ts';
import { IssuanceService } from '../../ca/issuance.ts';
import { MemoryKeyProvider } from '../../hsm/memory-provider.ts';
import { hsmCrypto } from '../../hsm/webcrypto.ts';
import { migrate, openDatabase } from '../../store/database.ts';
import { Store } from '../../store/store.ts';
import type { CaCertificateRecord } from '../../store/types.ts';
import { createTestDatabase, type TestDatabase } from './databases.ts';

export const BASE = 'http://pki.devid.test';

/** A hierarchy on in-memory keys over a fresh PGlite database: fast unit tests of ca/ (SoftHSM is tested elsewhere). */
export interface MemoryCa {
  provider: MemoryKeyProvider;
  crypto: Crypto;
  store: Store;
  hierarchy: Hierarchy;
  audit: CaCertificateRecord;
  issuance: IssuanceService;
  close(): Promise<void>;
}

export async function createMemoryCa(): Promise<MemoryCa> {
  const database: TestDatabase = await createTestDatabase('pglite');
  const db = openDatabase(database.location);
  await migrate(db, database.location);
  const store = new Store(db);
  const provider = new MemoryKeyProvider();
  const crypto = hsmCrypto(provider);
  const { hierarchy, audit } = await store.transaction((tx) =>
    createHierarchy(new KeyCeremony(provider), crypto, tx, { organization: 'devid.test', baseUrl: BASE, now: new Date() }));
  return {
    provider, crypto, store, hierarchy, audit, issuance: new IssuanceService(() => new Date()),
    close: async () => {
      await store.close();
      await database.drop();
    },
  };
}
