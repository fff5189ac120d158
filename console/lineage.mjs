import { html } from './preact-htm.mjs';
import { when } from './api.mjs';

const W = 170;
const H = 46;
const DX = 210;
const DY = 66;

/**
 * The lineage graph: each certificate a box, each predecessor link an arrow
 * from the older certificate to the one that replaced it, laid out as a tree
 * from each birth certificate (left) to the newest (right). Refused
 * successors and clone signals hang off the certificate they named, dashed.
 */
export function layout(lineage) {
  const bySha = new Map(lineage.nodes.map((n) => [n.sha256, n]));
  const children = new Map();
  const roots = [];
  for (const node of lineage.nodes) {
    if (node.predecessor && bySha.has(node.predecessor)) {
      if (!children.has(node.predecessor)) children.set(node.predecessor, []);
      children.get(node.predecessor).push(node);
    } else roots.push(node);
  }
  const refusedOn = new Map();
  for (const r of lineage.refused) if (r.on) refusedOn.set(r.on, [...(refusedOn.get(r.on) ?? []), r]);
  const boxes = [];
  const edges = [];
  let row = 0;
  const place = (node, depth) => {
    const kids = (children.get(node.sha256) ?? []).sort((a, b) => a.issuedAt.localeCompare(b.issuedAt));
    const refused = refusedOn.get(node.sha256) ?? [];
    const y = row;
    const box = { kind: 'certificate', node, x: depth * DX, y: y * DY, fork: lineage.forks.includes(node.sha256) };
    boxes.push(box);
    if (kids.length === 0 && refused.length === 0) row += 1;
    for (const kid of kids) {
      const child = place(kid, depth + 1);
      edges.push({ from: box, to: child, refused: false });
    }
    for (const r of refused) {
      const attempt = { kind: 'refused', refused: r, x: (depth + 1) * DX, y: row * DY };
      row += 1;
      boxes.push(attempt);
      edges.push({ from: box, to: attempt, refused: true });
    }
    return box;
  };
  for (const root of roots.sort((a, b) => a.issuedAt.localeCompare(b.issuedAt))) place(root, 0);
  const width = Math.max(...boxes.map((b) => b.x), 0) + W + 20;
  const height = Math.max(row, 1) * DY;
  return { boxes, edges, width, height };
}

const short = (serial) => (serial.length > 14 ? `${serial.slice(0, 12)}…` : serial);

export function LineageGraph({ lineage }) {
  if (lineage.nodes.length === 0) return html`<p>No certificates.</p>`;
  const { boxes, edges, width, height } = layout(lineage);
  const unplaced = lineage.refused.filter((r) => !r.on);
  return html`
    <svg class="lineage" width=${width} height=${height} viewBox=${`-10 -10 ${width} ${height}`} role="img" aria-label="certificate lineage">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
        </marker>
      </defs>
      ${edges.map((e) => html`<line class=${`edge${e.refused ? ' refused' : ''}`} x1=${e.from.x + W} y1=${e.from.y + H / 2} x2=${e.to.x} y2=${e.to.y + H / 2}
        data-from=${e.from.node.serial} data-to=${e.to.node?.serial ?? ''} marker-end="url(#arrow)" />`)}
      ${boxes.map((b) => (b.kind === 'certificate' ? html`
        <g class=${`node ${b.node.kind}${b.node.revoked ? ' revoked' : ''}${b.fork ? ' fork' : ''}`} data-serial=${b.node.serial} transform=${`translate(${b.x},${b.y})`}>
          <title>${b.node.kind} certificate ${b.node.serial}, issued ${when(b.node.issuedAt)}${b.node.revoked ? ', revoked' : ''}${b.fork ? ', FORK: more than one successor' : ''}</title>
          <rect width=${W} height=${H} rx="6" />
          <text x="10" y="18" class="kind">${b.node.kind}${b.node.revoked ? ' · revoked' : ''}${b.fork ? ' · fork' : ''}</text>
          <text x="10" y="36" class="serial">${short(b.node.serial)}</text>
        </g>` : html`
        <g class="node attempt" transform=${`translate(${b.x},${b.y})`}>
          <title>${b.refused.action} #${b.refused.seq} at ${when(b.refused.at)}: ${b.refused.reason}</title>
          <rect width=${W} height=${H} rx="6" />
          <text x="10" y="18" class="kind">refused ${b.refused.action === 'device.lineage-fork' ? 'successor' : '(clone signal)'}</text>
          <text x="10" y="36" class="serial">${when(b.refused.at).slice(0, 16)}</text>
        </g>`))}
    </svg>
    ${unplaced.length > 0 && html`<ul class="signals">${unplaced.map((r) => html`<li class="signal">${when(r.at)} ${r.action}: ${r.reason}</li>`)}</ul>`}`;
}
