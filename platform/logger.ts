import pino, { type Logger } from 'pino';

export type { Logger };

/**
 * Structured JSON logs on stderr (stdout is kept for command output such as a
 * new token). Anything that looks like a secret is redacted even if passed by
 * mistake.
 */
export function createLogger(level = process.env.DEVID_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { service: 'devid-ca' },
      redact: {
        paths: ['pin', '*.pin', 'token', '*.token', 'secret', '*.secret', 'authorization', '*.authorization', 'req.headers.authorization', 'headers.authorization'],
        censor: '[redacted]',
      },
    },
    pino.destination(2),
  );
}
