import { TILE_WIDTH } from './tile-builder.ts';

/** tlog-tiles allows levels 0 to 63; our trees are far shallower, so anything above is refused early. */
const MAX_LEVEL = 63;
/** The tile index N stays a safe integer: at most five three-digit elements (N < 10^15). */
const MAX_ELEMENTS = 5;

/** A tile request: `width` is 256 for a full tile, 1 to 255 for a partial one. */
export interface TileRequest {
  level: number;
  index: number;
  width: number;
}

/**
 * tlog-tiles' index path: N in three-digit elements, all but the last
 * prefixed with `x`, as few elements as N needs (1234067 is x001/x234/067).
 * Undefined for anything else: a leading zero element, a wrong digit count.
 */
export function parseIndex(elements: readonly string[]): number | undefined {
  if (elements.length === 0 || elements.length > MAX_ELEMENTS) return undefined;
  let index = 0;
  for (const [i, element] of elements.entries()) {
    const last = i === elements.length - 1;
    const match = (last ? /^(\d{3})$/ : /^x(\d{3})$/).exec(element);
    if (!match) return undefined;
    index = index * 1000 + Number(match[1]);
  }
  if (elements.length > 1 && elements[0] === 'x000') return undefined;
  return index;
}

export function formatIndex(index: number): string {
  const elements: string[] = [];
  let rest = index;
  do {
    elements.unshift(String(rest % 1000).padStart(3, '0'));
    rest = Math.floor(rest / 1000);
  } while (rest > 0);
  return elements.map((e, i) => (i < elements.length - 1 ? `x${e}` : e)).join('/');
}

/** `<N>[.p/<W>]` after the level: the index elements and the optional partial width. */
export function parseIndexAndWidth(path: string): { index: number; width: number } | undefined {
  const partial = /^(.*)\.p\/([1-9]\d{0,2})$/.exec(path);
  const indexPath = partial ? partial[1]! : path;
  const width = partial ? Number(partial[2]) : TILE_WIDTH;
  if (width < 1 || width > TILE_WIDTH || (partial && width === TILE_WIDTH)) return undefined;
  const index = parseIndex(indexPath.split('/'));
  return index === undefined ? undefined : { index, width };
}

/** `<L>/<N>[.p/<W>]`, the part of a hash tile path after `tile/`. */
export function parseTilePath(path: string): TileRequest | undefined {
  const match = /^(0|[1-9]\d?)\/(.+)$/.exec(path);
  if (!match || Number(match[1]) > MAX_LEVEL) return undefined;
  const rest = parseIndexAndWidth(match[2]!);
  return rest ? { level: Number(match[1]), ...rest } : undefined;
}
