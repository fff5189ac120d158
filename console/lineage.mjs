import { html, useLayoutEffect, useRef, useState } from './preact-htm.mjs';
import { when } from './api.mjs';

const W = 170;
const H = 46;
const DX = 210;
const DY = 74;
/** Room above the first row for the "collapse" tab of an expanded run. */
const TOP = 14;
/** Shorter runs of ordinary renewals stay as they are: collapsing two boxes into one saves nothing. */
export const MIN_RUN = 3;

/**
 * The runs of ordinary renewals: chains of operational certificates, each
 * the only successor of the one before, none revoked, none a fork or a fork's
 * branch, none named by a refused successor or a clone signal, none from
 * another issuer than its operational predecessor (a CA rollover), and none the newest of
 * its branch (the certificate in use stays in sight). Each run of at least
 * MIN_RUN certificates is keyed by its first certificate's serial.
 */
export function runsOf(lineage, issuers = new Map()) {
  const bySha = new Map(lineage.nodes.map((n) => [n.sha256, n]));
  const children = childrenOf(lineage);
  const refused = new Set(lineage.refused.map((r) => r.on).filter(Boolean));
  const forks = new Set(lineage.forks);
  const ordinary = (node) => {
    const parent = node.predecessor && bySha.get(node.predecessor);
    return node.kind === 'operational' && !node.revoked && parent !== undefined && parent !== null
      && !forks.has(node.sha256) && !refused.has(node.sha256)
      && (children.get(node.sha256) ?? []).length === 1 && (children.get(parent.sha256) ?? []).length === 1
      && (parent.kind !== 'operational' || issuers.get(node.serial) === issuers.get(parent.serial));
  };
  const runs = [];
  for (const node of lineage.nodes) {
    if (!ordinary(node) || ordinary(bySha.get(node.predecessor))) continue;
    const nodes = [node];
    for (let next = children.get(node.sha256)[0]; ordinary(next); next = children.get(next.sha256)[0]) nodes.push(next);
    if (nodes.length >= MIN_RUN) runs.push({ key: nodes[0].serial, nodes, first: nodes[0], last: nodes.at(-1) });
  }
  return runs;
}

function childrenOf(lineage) {
  const known = new Set(lineage.nodes.map((n) => n.sha256));
  const children = new Map();
  for (const node of lineage.nodes) {
    if (node.predecessor && known.has(node.predecessor)) children.set(node.predecessor, [...(children.get(node.predecessor) ?? []), node]);
  }
  for (const kids of children.values()) kids.sort((a, b) => a.issuedAt.localeCompare(b.issuedAt));
  return children;
}

/**
 * The lineage graph's boxes and arrows: each certificate (or collapsed run
 * of ordinary renewals) a box, each predecessor link an arrow from the older
 * certificate to the one that replaced it, laid out as a tree from each birth
 * certificate (left) to the newest. A chain longer than `cols` boxes wraps
 * onto the next row, like a line of text, with its arrow turning down. A fork's
 * further branches start on rows of their own; refused successors and clone
 * signals hang off the certificate they named, dashed.
 */
export function layout(lineage, { expanded = new Set(), cols = 6, issuers = new Map() } = {}) {
  const children = childrenOf(lineage);
  const roots = lineage.nodes.filter((n) => !n.predecessor || !lineage.nodes.some((p) => p.sha256 === n.predecessor));
  const runs = runsOf(lineage, issuers);
  const runStarting = new Map(runs.map((r) => [r.first.sha256, r]));
  const runOf = new Map(runs.flatMap((r) => r.nodes.map((n) => [n.sha256, r])));
  const refusedOn = new Map();
  for (const r of lineage.refused) if (r.on) refusedOn.set(r.on, [...(refusedOn.get(r.on) ?? []), r]);
  const forks = new Set(lineage.forks);
  const item = (node) => {
    const run = runStarting.get(node.sha256);
    return run && !expanded.has(run.key) ? { kind: 'run', run } : { kind: 'certificate', node, run: runOf.get(node.sha256) };
  };
  const boxes = [];
  const edges = [];
  let row = 0;
  const place = (it, at, continues) => {
    let col = at;
    // The chain goes on: past the last column it wraps to the next row. A
    // fork's further branch stays in the last column, on a row of its own.
    if (continues && col >= cols) {
      row += 1;
      col = 0;
    } else if (col >= cols) col = cols - 1;
    const last = it.kind === 'run' ? it.run.last : it.node;
    const box = { ...it, x: col * DX, y: TOP + row * DY, fork: it.kind === 'certificate' && forks.has(it.node.sha256) };
    boxes.push(box);
    const kids = (children.get(last.sha256) ?? []).map(item);
    const refused = refusedOn.get(last.sha256) ?? [];
    if (kids.length === 0 && refused.length === 0) row += 1;
    kids.forEach((kid, i) => {
      const child = place(kid, col + 1, i === 0);
      edges.push({ from: box, to: child, refused: false, route: routeOf(box, child, i === 0) });
    });
    for (const r of refused) {
      const attempt = { kind: 'refused', refused: r, x: Math.min(col + 1, cols - 1) * DX, y: TOP + row * DY };
      row += 1;
      boxes.push(attempt);
      edges.push({ from: box, to: attempt, refused: true, route: routeOf(box, attempt, false) });
    }
    return box;
  };
  for (const root of roots.sort((a, b) => a.issuedAt.localeCompare(b.issuedAt))) place(item(root), 0, false);
  const width = Math.max(...boxes.map((b) => b.x), 0) + W + 40;
  const height = TOP + Math.max(row, 1) * DY;
  return { boxes, edges, width, height, runs };
}

/**
 * How an arrow goes: straight along a row, or diagonally within the gap
 * between two columns; where the chain wraps, down, back and down again
 * through the gap between two rows ("wrap"); to a branch kept in the last
 * column, out of the right side, down the margin and back in ("side").
 */
function routeOf(from, to, continues) {
  if (to.x > from.x) return 'straight';
  return continues ? 'wrap' : 'side';
}

function edgePath({ from, to, route }) {
  if (route === 'straight') return `M ${from.x + W} ${from.y + H / 2} L ${to.x} ${to.y + H / 2}`;
  if (route === 'wrap') {
    const turn = from.y + H + 6;
    return `M ${from.x + W / 2} ${from.y + H} L ${from.x + W / 2} ${turn} L ${to.x + W / 2} ${turn} L ${to.x + W / 2} ${to.y}`;
  }
  const margin = Math.max(from.x, to.x) + W + 18;
  return `M ${from.x + W} ${from.y + H / 2} L ${margin} ${from.y + H / 2} L ${margin} ${to.y + H / 2} L ${to.x + W} ${to.y + H / 2}`;
}

const short = (serial) => (serial.length > 14 ? `${serial.slice(0, 12)}…` : serial);

/** A run's dates on one line: one day with its first and last time, else the first and last day. */
export function span(from, to) {
  const [a, b] = [when(from), when(to)];
  return a.slice(0, 10) === b.slice(0, 10) ? `${a.slice(0, 16)}–${b.slice(11, 16)}` : `${a.slice(0, 10)} → ${b.slice(0, 10)}`;
}

const idOf = (b) => (b.kind === 'run' ? { from: b.run.last.serial, to: b.run.first.serial } : { from: b.node?.serial ?? '', to: b.node?.serial ?? '' });

/** Follows the width of its box, so the graph wraps instead of running off the page. */
function useColumns(ref) {
  const [cols, setCols] = useState(5);
  useLayoutEffect(() => {
    const element = ref.current;
    if (!element) return undefined;
    const measure = () => {
      const style = getComputedStyle(element);
      const inner = element.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 40;
      setCols(Math.max(2, Math.floor((inner - W) / DX) + 1));
    };
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return cols;
}

/** `certificates` (the history's, optional) lets a CA rollover break a run: a certificate from another issuer than its predecessor's stays in sight. */
export function LineageGraph({ lineage, certificates = [] }) {
  const ref = useRef(null);
  const cols = useColumns(ref);
  const [expanded, setExpanded] = useState(() => new Set());
  if (lineage.nodes.length === 0) return html`<div class="graph" ref=${ref}><p>No certificates.</p></div>`;
  const issuers = new Map(certificates.map((c) => [c.serial, c.issuer]));
  const { boxes, edges, width, height, runs } = layout(lineage, { expanded, cols, issuers });
  const unplaced = lineage.refused.filter((r) => !r.on);
  const toggle = (key) => {
    const next = new Set(expanded);
    if (next.has(key)) next.delete(key);
    else next.add(key);
    setExpanded(next);
  };
  const onKey = (key) => (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      toggle(key);
    }
  };
  const collapsedCount = runs.filter((r) => !expanded.has(r.key)).length;
  return html`
    <div class="graph" ref=${ref}>
    ${runs.length > 0 && html`<p class="hint lineage-summary">${lineage.nodes.length} certificates. ${collapsedCount === 0 ? 'Every run of ordinary renewals is shown: click "collapse" above one to fold it again.'
      : `${collapsedCount} run${collapsedCount === 1 ? '' : 's'} of ordinary renewals folded into one box each: click a box to show its certificates.`}</p>`}
    <svg class="lineage" width=${width} height=${height} viewBox=${`-10 -10 ${width} ${height}`} role="img" aria-label="certificate lineage">
      <defs>
        <marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse">
          <path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead" />
        </marker>
      </defs>
      ${edges.map((e) => html`<path class=${`edge${e.refused ? ' refused' : ''}${e.route === 'straight' ? '' : ` ${e.route}`}`} d=${edgePath(e)}
        data-from=${idOf(e.from).from} data-to=${e.refused ? '' : idOf(e.to).to} marker-end="url(#arrow)" />`)}
      ${boxes.map((b) => {
        if (b.kind === 'run') {
          const { run } = b;
          return html`
        <g class="node run" role="button" tabindex="0" aria-expanded="false" data-run=${run.key} data-count=${run.nodes.length} data-first=${run.first.serial} data-last=${run.last.serial}
          transform=${`translate(${b.x},${b.y})`} onClick=${() => toggle(run.key)} onKeyDown=${onKey(run.key)}>
          <title>${run.nodes.length} operational certificates, each replacing the one before with nothing notable, issued ${when(run.first.issuedAt)} to ${when(run.last.issuedAt)}: ${run.first.serial} … ${run.last.serial}. Click to show them.</title>
          <rect class="behind" x="6" y="-6" width=${W} height=${H} rx="6" />
          <rect class="behind" x="3" y="-3" width=${W} height=${H} rx="6" />
          <rect width=${W} height=${H} rx="6" />
          <text x="10" y="18" class="kind">▸ ${run.nodes.length} certificates</text>
          <text x="10" y="36" class="serial span">${span(run.first.issuedAt, run.last.issuedAt)}</text>
        </g>`;
        }
        if (b.kind === 'certificate') {
          const n = b.node;
          const head = b.run && b.run.first === n;
          return html`
        <g class=${`node ${n.kind}${n.revoked ? ' revoked' : ''}${b.fork ? ' fork' : ''}${b.run ? ' in-run' : ''}`} data-serial=${n.serial} data-run=${b.run?.key ?? null} transform=${`translate(${b.x},${b.y})`}>
          <title>${n.kind} certificate ${n.serial}, issued ${when(n.issuedAt)}${n.revoked ? ', revoked' : ''}${b.fork ? ', FORK: more than one successor' : ''}${b.run ? `, an ordinary renewal (${b.run.nodes.indexOf(n) + 1} of ${b.run.nodes.length})` : ''}</title>
          <rect width=${W} height=${H} rx="6" />
          <text x="10" y="18" class="kind">${n.kind}${n.revoked ? ' · revoked' : ''}${b.fork ? ' · fork' : ''}</text>
          <text x="10" y="36" class="serial">${short(n.serial)}</text>
        </g>
        ${head && html`
        <g class="collapse" role="button" tabindex="0" aria-expanded="true" data-run=${b.run.key} transform=${`translate(${b.x},${b.y - 12})`}
          onClick=${() => toggle(b.run.key)} onKeyDown=${onKey(b.run.key)}>
          <title>Fold these ${b.run.nodes.length} ordinary renewals back into one box</title>
          <rect width="118" height="16" rx="4" />
          <text x="6" y="12">▾ collapse ${b.run.nodes.length}</text>
        </g>`}`;
        }
        return html`
        <g class="node attempt" transform=${`translate(${b.x},${b.y})`}>
          <title>${b.refused.action} #${b.refused.seq} at ${when(b.refused.at)}: ${b.refused.reason}</title>
          <rect width=${W} height=${H} rx="6" />
          <text x="10" y="18" class="kind">refused ${b.refused.action === 'device.lineage-fork' ? 'successor' : '(clone signal)'}</text>
          <text x="10" y="36" class="serial">${when(b.refused.at).slice(0, 16)}</text>
        </g>`;
      })}
    </svg>
    ${unplaced.length > 0 && html`<ul class="signals">${unplaced.map((r) => html`<li class="signal">${when(r.at)} ${r.action}: ${r.reason}</li>`)}</ul>`}
    </div>`;
}
