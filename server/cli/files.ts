import { readFileSync } from 'node:fs';
import { malformed } from '../../errors/domain-error.ts';

/** A file the operator named on the command line; a missing or unreadable one is a malformed request, in words. */
export function readBytes(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw malformed(`cannot read ${what} ${path}: ${(err as Error).message}`);
  }
}

export const readText = (path: string, what: string) => readBytes(path, what).toString('utf8');
