import { createHierarchy, existingHierarchy, HierarchyError, type Hierarchy } from '../ca/hierarchy.ts';
import { AuditCheckpoints } from '../registry/audit-checkpoints.ts';
import { loopbackWarnings, type Config, type PublicIdentity } from './config.ts';
import { openContext, type Context } from './context.ts';
import { recordIdentity } from './identity.ts';
import type { Logger } from './logger.ts';
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
  const reason = await existingHierarchy(ctx.provider, ctx.store);
  if (reason) throw new HierarchyError(`refusing to overwrite the existing hierarchy: ${reason}`);
  progress('creating the CA keys in the token and certifying them');
  const { publicHost, trustDomain, httpBaseUrl } = ctx.config;
  const identity = { publicHost, trustDomain, httpBaseUrl };
  for (const warning of loopbackWarnings(identity)) ctx.logger.warn(warning);
  const now = ctx.clock();
  const hierarchy = await ctx.store.transaction(async (tx) => {
    await recordIdentity(tx, identity);
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
  progress('issuing the HTTPS server certificate');
  await ensureServerCredentials(ctx, hierarchy, identity);
  progress('creating the audit key and the first signed checkpoint');
  await new AuditCheckpoints(ctx.provider, ctx.clock).create(ctx.store);
  return { hierarchy, identity };
}

/** Opens the context with token preparation, initialises, closes. */
export async function runInit(config: Config, logger: Logger): Promise<InitResult> {
  const ctx = await openContext(config, logger, { prepareToken: true });
  try {
    return await initialise(ctx);
  } finally {
    await ctx.close();
  }
}
