// node move.mjs old=new ...  : git mv files and rewrite relative import specifiers repo-wide
import { execSync } from 'node:child_process';
import fs from 'node:fs'; import path from 'node:path';
const root = '/work/main'; process.chdir(root);
const moves = new Map(process.argv.slice(2).map((a) => a.split('=').map((p) => path.resolve(root, p))));
const files = execSync('git ls-files "*.ts" "*.mjs" "*.js"', { encoding: 'utf8' }).trim().split('\n').map((f) => path.resolve(root, f));
const rx = /((?:from|import)\s*\(?\s*')(\.{1,2}\/[^']+)(')/g;
for (const file of files) {
  const src = fs.readFileSync(file, 'utf8');
  const newFile = moves.get(file) ?? file;
  const out = src.replace(rx, (m, a, spec, c) => {
    const target = path.resolve(path.dirname(file), spec);
    const newTarget = moves.get(target) ?? target;
    if (newTarget === target && newFile === file) return m;
    let rel = path.relative(path.dirname(newFile), newTarget);
    if (!rel.startsWith('.')) rel = './' + rel;
    return a + rel + c;
  });
  if (out !== src) fs.writeFileSync(file, out);
}
for (const [from, to] of moves) { fs.mkdirSync(path.dirname(to), { recursive: true }); execSync(`git mv ${from} ${to}`); }
