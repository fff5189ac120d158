/**
 * A file of the clone that the code reads as it is (package.json, console/),
 * found from the sources (server/) and from their compiled copy (build/server/) alike.
 */
export function projectFile(path: string): URL {
  const root = new URL(import.meta.url.endsWith('.js') ? '../../' : '../', import.meta.url);
  return new URL(path, root);
}
