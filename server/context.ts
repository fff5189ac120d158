import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { hsmCrypto } from '../hsm/webcrypto.ts';
import { HsmError } from '../hsm/errors.ts';
import { Pkcs11KeyProvider } from '../hsm/pkcs11-provider.ts';
import { ensurePinFile, ensureToken, writeSoftHsmConfig } from '../hsm/softhsm.ts';
import { AuditLog } from '../registry/audit/audit-log.ts';
import { createDatabaseIfMissing, migrate, openDatabase, postgresProblem } from '../store/database.ts';
import { Store } from '../store/store.ts';
import type { Config } from './config.ts';
import { lockDataDir } from './data-lock.ts';
import type { Logger } from '../platform/logger.ts';

/** Everything a command needs, opened once and closed together. */
export interface Context {
  config: Config;
  logger: Logger;
  clock: () => Date;
  store: Store;
  provider: Pkcs11KeyProvider;
  crypto: Crypto;
  audit: AuditLog;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** init: create the SoftHSM token and PIN files when missing. */
  prepareToken?: boolean;
  clock?: () => Date;
}

function readPin(config: Config, create: boolean): string {
  const source = config.pkcs11.pin;
  if (source.kind === 'env') return source.read();
  if (source.kind === 'generated' && create) return ensurePinFile(source.path);
  if (!existsSync(source.path)) {
    throw new HsmError('pin-missing', source.kind === 'file'
      ? `DEVID_PKCS11_PIN_FILE ${source.path} does not exist`
      : `no PIN file at ${source.path}: run "devid-ca init" first`);
  }
  return readFileSync(source.path, 'utf8').trim();
}

export async function openContext(config: Config, logger: Logger, options: OpenOptions = {}): Promise<Context> {
  const cleanups: Array<() => Promise<void> | void> = [];
  const close = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  };
  try {
    mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
    if (config.database.kind === 'pglite') cleanups.push(await lockDataDir(config.dataDir));
    // init readies the database before it makes a token or a PIN: a database that cannot be had leaves nothing half made.
    let store: Store | undefined;
    if (options.prepareToken) store = await openStore(config, logger, cleanups, true);
    const provider = await openProvider(config, logger, options.prepareToken === true);
    cleanups.push(() => provider.close());
    store ??= await openStore(config, logger, cleanups, false);

    const clock = options.clock ?? (() => new Date());
    return { config, logger, clock, store, provider, crypto: hsmCrypto(provider), audit: new AuditLog(clock), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The token: created (SoftHSM, with its PIN files) when init asks, then logged in. */
async function openProvider(config: Config, logger: Logger, prepareToken: boolean): Promise<Pkcs11KeyProvider> {
  const softhsm = config.pkcs11.softhsm;
  if (softhsm) {
    if (softhsm.ownConfig) writeSoftHsmConfig(softhsm);
    process.env.SOFTHSM2_CONF = softhsm.confPath;
  }
  const pin = readPin(config, prepareToken);
  if (softhsm && prepareToken) {
    const soPin = ensurePinFile(softhsm.soPinFile);
    if (await ensureToken(config.pkcs11.modulePath, config.pkcs11.tokenLabel, soPin, pin)) {
      logger.info({ label: config.pkcs11.tokenLabel }, 'initialised SoftHSM token');
    }
  }
  return Pkcs11KeyProvider.open({ modulePath: config.pkcs11.modulePath, tokenLabel: config.pkcs11.tokenLabel, pin });
}

/** The database, migrated; on init a PostgreSQL database that does not exist yet is created first. */
async function openStore(config: Config, logger: Logger, cleanups: Array<() => Promise<void> | void>, create: boolean): Promise<Store> {
  try {
    if (create && config.database.kind === 'postgres') {
      const created = await createDatabaseIfMissing(config.database, config.databaseTimeoutMs);
      if (created) logger.info({ database: created }, 'created the PostgreSQL database');
    }
    const db = openDatabase(config.database, { timeoutMs: config.databaseTimeoutMs, warn: (message) => logger.warn({ database: String(message).split('\n')[0] }, 'database connection trouble') });
    const store = new Store(db);
    cleanups.push(() => store.close());
    await migrate(db, config.database);
    return store;
  } catch (err) {
    throw (config.database.kind === 'postgres' ? postgresProblem(err, config.database.url) : undefined) ?? err;
  }
}
