import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** OpenSSL as the outside verifier of what devid-ca emits. */
function withFiles<T>(files: Record<string, string>, work: (paths: Record<string, string>) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'devid-test-openssl-'));
  try {
    const paths: Record<string, string> = {};
    for (const [name, content] of Object.entries(files)) {
      paths[name] = join(dir, name);
      writeFileSync(paths[name]!, content);
    }
    return work(paths);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function opensslVerify(rootPem: string, untrustedPem: string | undefined, leafPem: string, purpose?: string): { ok: boolean; output: string } {
  return withFiles({ 'root.pem': rootPem, 'untrusted.pem': untrustedPem ?? '', 'leaf.pem': leafPem }, (p) => {
    const args = ['verify', '-CAfile', p['root.pem']!];
    if (untrustedPem) args.push('-untrusted', p['untrusted.pem']!);
    if (purpose) args.push('-purpose', purpose);
    args.push(p['leaf.pem']!);
    const result = spawnSync('openssl', args, { encoding: 'utf8' });
    return { ok: result.status === 0, output: `${result.stdout}${result.stderr}` };
  });
}

export function opensslText(pem: string): string {
  return withFiles({ 'cert.pem': pem }, (p) =>
    execFileSync('openssl', ['x509', '-in', p['cert.pem']!, '-noout', '-text', '-nameopt', 'RFC2253'], { encoding: 'utf8' }),
  );
}

export function opensslSubject(pem: string): string {
  return withFiles({ 'cert.pem': pem }, (p) =>
    execFileSync('openssl', ['x509', '-in', p['cert.pem']!, '-noout', '-subject', '-nameopt', 'RFC2253'], { encoding: 'utf8' }).trim(),
  );
}
