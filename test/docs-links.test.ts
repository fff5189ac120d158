import { expect } from 'chai';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The documentation holds together: every relative link in README.md and
 * docs/**\/*.md names a file of the repository (and, with `#anchor`, a
 * heading of that file), every page is in the index, and the architecture
 * page's folder map names every top-level folder. No server, no network.
 */
const ROOT = fileURLToPath(new URL('..', import.meta.url));

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return markdownFiles(path);
    return entry.name.endsWith('.md') ? [path] : [];
  });
}

/** The text without fenced code blocks and inline code, where `](` is not a link. */
function prose(text: string): string {
  return text.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** Relative link targets of a Markdown text: inline links and images, and reference definitions. */
export function relativeLinks(text: string): string[] {
  const body = prose(text);
  const targets = [
    ...[...body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!),
    ...[...body.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm)].map((m) => m[1]!),
  ];
  return targets.filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t));
}

/** GitHub's anchors for a file's headings (lower case, punctuation dropped, spaces to hyphens, repeats numbered). */
export function headingAnchors(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, heading] of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = heading!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').trim().replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const [, id] of text.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) anchors.add(id!);
  return anchors;
}

/** What is wrong with one link from `file` (a path under ROOT), or undefined. */
export function brokenLink(file: string, target: string): string | undefined {
  const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
  const resolved = pathPart === '' ? join(ROOT, file) : join(dirname(join(ROOT, file)), decodeURIComponent(pathPart));
  if (!resolved.startsWith(ROOT)) return `${target} leaves the repository`;
  if (!existsSync(resolved)) return `${target}: no such file ${relative(ROOT, resolved)}`;
  if (anchor === undefined) return undefined;
  if (statSync(resolved).isDirectory() || !resolved.endsWith('.md')) return `${target}: an anchor into a file that is not Markdown`;
  if (!headingAnchors(readFileSync(resolved, 'utf8')).has(anchor)) return `${target}: no heading #${anchor} in ${relative(ROOT, resolved)}`;
  return undefined;
}

/** Cells of a table row: pipes inside code spans or escaped do not separate. */
function cellCount(row: string): number {
  const bare = row.replace(/`[^`]*`/g, 'x').replace(/\\\|/g, 'x').trim().replace(/^\|/, '').replace(/\|$/, '');
  return bare.split('|').length;
}

/** Tables whose rows do not have the header's cells, or that run into a paragraph: "line N: ...". */
export function brokenTables(text: string): string[] {
  const lines = text.split('\n');
  const problems: string[] = [];
  let fenced = false;
  for (let i = 1; i < lines.length; i++) {
    if (lines[i]!.startsWith('```')) fenced = !fenced;
    if (fenced || !/^\s*\|[-: |]+\|\s*$/.test(lines[i]!)) continue;
    const cells = cellCount(lines[i - 1]!);
    let j = i + 1;
    for (; j < lines.length && lines[j]!.trim().startsWith('|'); j++) {
      if (cellCount(lines[j]!) !== cells) problems.push(`line ${j + 1}: ${cellCount(lines[j]!)} cells, the header has ${cells}`);
    }
    if (j < lines.length && lines[j]!.trim() !== '') problems.push(`line ${j + 1}: text right after a table joins its last row`);
  }
  return problems;
}

describe('documentation links', () => {
  const files = ['README.md', ...markdownFiles(join(ROOT, 'docs')).map((path) => relative(ROOT, path))];

  it('finds links, images and anchors as GitHub renders them', () => {
    expect(relativeLinks('[a](b.md) ![i](../x.png "t") [c](https://e.example/) `[d](no.md)` [e](#top)\n[r]: ref.md\n')).to.deep.equal(['b.md', '../x.png', '#top', 'ref.md']);
    expect([...headingAnchors('# Top\n## Keys a request may carry\n## Top\n```sh\n# not a heading\n```\n')]).to.deep.equal(['top', 'keys-a-request-may-carry', 'top-1']);
    expect(brokenLink('docs/operators/factory.md', 'docs/console-fleet.png')).to.match(/no such file/);
    expect(brokenLink('README.md', 'docs/operators/factory.md#no-such-heading')).to.match(/no heading/);
  });

  it('finds broken tables', () => {
    expect(brokenTables('| a | b |\n|---|---|\n| `x|y` | 2 |\n')).to.deep.equal([]);
    expect(brokenTables('| a | b |\n|---|---|\n| 1 | 2 | The\nfloor is\n')).to.deep.equal(['line 3: 3 cells, the header has 2', 'line 4: text right after a table joins its last row']);
  });

  for (const file of files) {
    it(`${file}: every table is well formed`, () => {
      const broken = brokenTables(readFileSync(join(ROOT, file), 'utf8'));
      expect(broken, `${file}:\n${broken.join('\n')}`).to.deep.equal([]);
    });
    it(`${file}: every relative link resolves`, () => {
      const broken = relativeLinks(readFileSync(join(ROOT, file), 'utf8')).map((target) => brokenLink(file, target)).filter((b) => b !== undefined);
      expect(broken, `${file}:\n${broken.join('\n')}`).to.deep.equal([]);
    });
  }

  it('docs/README.md links every page of docs/', () => {
    const index = readFileSync(join(ROOT, 'docs/README.md'), 'utf8');
    const linked = new Set(relativeLinks(index).map((t) => join('docs', t.split('#')[0]!)));
    const pages = files.filter((f) => f.startsWith('docs/') && f !== 'docs/README.md');
    expect(pages.filter((p) => !linked.has(p)), 'pages missing from docs/README.md').to.deep.equal([]);
  });

  it('the architecture page maps every top-level folder, one line each', () => {
    const text = readFileSync(join(ROOT, 'docs/developers/architecture.md'), 'utf8');
    const mapped = new Set([...text.matchAll(/^\| `([^`/]+)\/` \|/gm)].map((m) => m[1]!));
    const folders = readdirSync(ROOT, { withFileTypes: true })
      .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules' && !['var', 'test-artifacts', 'build'].includes(e.name))
      .map((e) => e.name);
    expect(folders.filter((f) => !mapped.has(f)), 'folders missing from the map').to.deep.equal([]);
    expect([...mapped].filter((f) => !folders.includes(f)), 'mapped folders that do not exist').to.deep.equal([]);
  });
});
