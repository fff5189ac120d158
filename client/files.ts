import { renameSync, writeFileSync } from 'node:fs';

/** Writes a file whole or not at all (write beside it, then rename), keys with mode 0600. */
export function writeAtomically(path: string, content: string, mode = 0o644): void {
  writeFileSync(`${path}.tmp`, content, { mode });
  renameSync(`${path}.tmp`, path);
}
