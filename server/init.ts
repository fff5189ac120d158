import { createHierarchy, destroyHierarchyKeys, existingHierarchy, HierarchyError, type Hierarchy } from '../ca/hierarchy.ts';
import { AuditCheckpoints } from '../registry/audit-checkpoints.ts';
import { loopbackWarnings, type PublicIdentity } from './config.ts';
import { LOCKS } from '../store/store.ts';
import type { Context } from './context.ts';
import { recordIdentity } from './identity.ts';
import { ensureServerCredentials } from './tls.ts';

export interface InitResult {
  hierarchy: Hierarchy;
  identity: PublicIdentity;
}

/**
 * `devid-ca init` (SPEC section 8): token, CA keys, hierarchy, schema and
 * server certificate. Refuses when a hierarchy exists in the database or the token.
 */
export async function initialise(ctx: Context, progress: (line: string) => void = () => {}): Promise<InitResult> {
  return (await initialiseUnlessPresent(ctx, progress, false))!;
}

/** `serve --init-if-empty`: initialises, or returns undefined when a hierarchy exists (this node joins it). */
export async function initialiseIfEmpty(ctx: Context, progress: (line: string) => void = () => {}): Promise<InitResult | undefined> {
  return initialiseUnlessPresent(ctx, progress, true);
}

async function initialiseUnlessPresent(ctx: Context, progress: (line: string) => void, joinExisting: boolean): Promise<InitResult | undefined> {
  const { publicHost, trustDomain, httpBaseUrl } = ctx.config;
  const identity = { publicHost, trustDomain, httpBaseUrl };
  const now = ctx.clock();
  let keysCreated = false;
  let hierarchy: Hierarchy | undefined;
  try {
    hierarchy = await ctx.store.transaction(async (tx) => {
      // Nodes starting together on one PostgreSQL: the first creates, the others wait and then join.
      await tx.lock(LOCKS.init);
      const reason = await existingHierarchy(ctx.provider, tx);
      if (reason && joinExisting) return undefined;
      if (reason) throw new HierarchyError(`refusing to overwrite the existing hierarchy: ${reason}`);
      for (const warning of loopbackWarnings(identity)) ctx.logger.warn(warning);
      progress('creating the CA keys in the token and certifying them');
      await recordIdentity(tx, identity);
      keysCreated = true;
      const created = await createHierarchy(ctx.provider, ctx.crypto, tx, { organization: trustDomain, baseUrl: httpBaseUrl, now });
      await ctx.audit.append(tx, {
        action: 'ca.initialised',
        actor: 'cli',
        data: {
          ...identity,
          certificates: Object.fromEntries(
            (['root', 'factory', 'operational'] as const).map((name) => [name, { serial: created[name].certificate.serialNumber, keyLabel: created[name].key.label }]),
          ),
        },
      });
      return created;
    });
  } catch (err) {
    // The database rolled back; keys made in this run would block every later init.
    if (keysCreated) await destroyHierarchyKeys(ctx.provider);
    throw err;
  }
  if (!hierarchy) return undefined;
  progress('issuing the HTTPS server certificate');
  await ensureServerCredentials(ctx, hierarchy, identity);
  progress('creating the audit key and the first signed checkpoint');
  const checkpoints = new AuditCheckpoints(ctx.provider, ctx.clock);
  await checkpoints.ensureKey(ctx.store);
  await checkpoints.create(ctx.store);
  return { hierarchy, identity };
}
