import type { Logger } from 'pino';
import type { IssueDeps } from '../../registry/enrollment/issue.ts';

/** What the EST front end is built from; constructed once by `serve`. */
export interface EstDeps extends IssueDeps {
  /** The recorded identity; relayed attestations are bound to the public host (rpIdHash), as ACME's. */
  identity: IssueDeps['identity'] & { publicHost: string };
  clock: () => Date;
  logger: Logger;
}
