import type { CliIo } from './io.ts';
import { stderrLines } from './output.ts';

/** This process: its own context (the data directory lock, the token, the database), its own stdout and stderr. */
export function localIo(): CliIo {
  return {
    out: (text) => process.stdout.write(text),
    stdout: process.stdout,
    ...stderrLines(),
    exit: () => {},
    withContext: async (work, prepareToken = false) => {
      // The HSM and database code loads here, for the commands that open them.
      const [{ openContext }, { loadConfig }, { createLogger }] = await Promise.all([import('../context.ts'), import('../config.ts'), import('../../platform/logger.ts')]);
      const ctx = await openContext(loadConfig(), createLogger(), { prepareToken });
      try {
        return await work(ctx);
      } finally {
        await ctx.close();
      }
    },
    actor: `cli:${process.getuid?.() ?? 0}`,
  };
}
