// node callers.mjs file.cpuprofile <functionName> [depth]: who calls it (self time attributed up the stack)
import fs from 'node:fs';
const p = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const target = process.argv[3]; const depth = Number(process.argv[4] ?? 6);
const byId = new Map(p.nodes.map((x) => [x.id, x])); const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const dt = new Map();
for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const total = [...dt.values()].reduce((a, b) => a + b, 0);
const stacks = new Map();
for (const [id, t] of dt) {
  const node = byId.get(id); if (node.callFrame.functionName !== target) continue;
  const chain = []; let cur = parent.get(id);
  while (cur !== undefined && chain.length < depth) { const cf = byId.get(cur).callFrame; chain.push(`${cf.functionName || '(anon)'}@${(cf.url || '').replace(/.*node_modules\//, '').replace(/.*\/work\/main\//, '')}:${cf.lineNumber}`); cur = parent.get(cur); }
  const k = chain.join(' < '); stacks.set(k, (stacks.get(k) ?? 0) + t);
}
for (const [k, t] of [...stacks].sort((a, b) => b[1] - a[1]).slice(0, 12)) console.log((100 * t / total).toFixed(2).padStart(6), '%', k);
