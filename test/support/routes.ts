import type { Express } from 'express';

/** A route an express app answers: its path in OpenAPI form (`{param}`) and a lowercase method. */
export interface AppRoute {
  path: string;
  method: string;
}

// Router 2 (express 5) keeps no public listing: these are the fields its Layer and Route carry.
interface Layer {
  rawPath?: string | string[];
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: Layer[] };
}

/** `/a/:b` as `/a/{b}`; any other path-to-regexp syntax (`*`, `{…}` groups, regexps) is refused, so it is noticed. */
function openapiPath(path: string): string {
  if (/[*?()[\]{}]/.test(path)) throw new Error(`the route ${path} uses syntax the route check does not read`);
  return path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
}

function walk(stack: Layer[], prefix: string, out: AppRoute[]): void {
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      // `_all` is a route's fallback for other methods (a 405), not an operation.
      const methods = Object.keys(layer.route.methods).filter((m) => m !== '_all');
      for (const path of paths) for (const method of methods) out.push({ path: openapiPath(prefix + path), method });
    } else if (layer.handle?.stack) {
      const mount = typeof layer.rawPath === 'string' && layer.rawPath !== '/' ? layer.rawPath : '';
      if (Array.isArray(layer.rawPath)) throw new Error('a router mounted on several paths: the route check does not read it');
      walk(layer.handle.stack, prefix + mount, out);
    }
  }
}

/** Every route of an express 5 app, nested routers included. */
export function routesOf(app: Express): AppRoute[] {
  const out: AppRoute[] = [];
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack, '', out);
  return out;
}
