import type { CliIo } from './io.ts';

/** "devid-ca:" lines on this process's stderr; progress lines only on a terminal, rewritten in place. */
export function stderrLines(): Pick<CliIo, 'say' | 'progress'> {
  let progressShown = false;
  return {
    say: (line) => { process.stderr.write(`${process.stderr.isTTY && progressShown ? '\n' : ''}devid-ca: ${line}\n`); progressShown = false; },
    progress: (line) => {
      if (!process.stderr.isTTY) return;
      process.stderr.write(`\rdevid-ca: ${line}\u001b[K`);
      progressShown = true;
    },
  };
}
