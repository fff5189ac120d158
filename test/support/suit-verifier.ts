import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const VERIFIER = join(dirname(fileURLToPath(import.meta.url)), 'suit_verify.py');
/** Debian's python3 has python3-cbor2 and python3-cryptography (scripts/setup.sh --test). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export interface Verdict {
  ok: boolean;
  facts?: Record<string, unknown>;
  reason: string;
}

/**
 * The outside verifier's verdict on a SUIT envelope (suit_verify.py: Python's
 * cbor2 and cryptography, written from the RFCs), anchored at a root
 * certificate, or at a bare public key as the draft's examples are signed.
 */
export function outsideVerify(envelope: Buffer, anchor: { rootPem: string } | { publicKeyPem: string }): Verdict {
  const dir = mkdtempSync(join(tmpdir(), 'devid-test-suit-'));
  try {
    const envelopeFile = join(dir, 'envelope.suit');
    const anchorFile = join(dir, 'anchor.pem');
    writeFileSync(envelopeFile, envelope);
    writeFileSync(anchorFile, 'rootPem' in anchor ? anchor.rootPem : anchor.publicKeyPem);
    const args = 'rootPem' in anchor ? [VERIFIER, envelopeFile, anchorFile] : [VERIFIER, '--key', anchorFile, envelopeFile];
    const run = spawnSync(PYTHON, args, { encoding: 'utf8' });
    return run.status === 0 ? { ok: true, facts: JSON.parse(run.stdout) as Record<string, unknown>, reason: '' } : { ok: false, reason: `${run.stderr}${run.stdout}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
