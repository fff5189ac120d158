import type { Logger } from 'pino';
import type { IssueDeps } from '../../registry/enrollment/issue.ts';

/** What the EST front end is built from; constructed once by `serve`. */
export interface EstDeps extends IssueDeps {
  clock: () => Date;
  logger: Logger;
}
