// node prof.mjs file.cpuprofile [n]: self time by function and by package/area
import fs from 'node:fs';
const p = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const n = Number(process.argv[3] ?? 40);
const byId = new Map(p.nodes.map((x) => [x.id, x]));
const dt = new Map(); 
for (let i = 0; i < p.samples.length; i++) dt.set(p.samples[i], (dt.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const total = [...dt.values()].reduce((a, b) => a + b, 0);
const fn = new Map(), area = new Map();
const areaOf = (url) => {
  if (!url) return '(native/vm)';
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/); if (m) return m[1];
  const w = url.match(/\/work\/main\/(?:build\/)?([^/]+)/); if (w) return 'ours:' + w[1];
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0];
  return url.slice(0, 40);
};
for (const [id, t] of dt) {
  const node = byId.get(id); const cf = node.callFrame;
  const k = `${cf.functionName || '(anon)'} ${(cf.url || '').replace(/.*node_modules\//, '').replace('/work/main/', '')}:${cf.lineNumber}`;
  fn.set(k, (fn.get(k) ?? 0) + t); const a = areaOf(cf.url); area.set(a, (area.get(a) ?? 0) + t);
}
console.log('total ms', (total / 1000).toFixed(0));
for (const [k, t] of [...area].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((100 * t / total).toFixed(1).padStart(5), '%', k);
console.log('---');
for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, n)) console.log((100 * t / total).toFixed(1).padStart(5), '%', k);
