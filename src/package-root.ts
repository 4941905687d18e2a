import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The checkout's (or image's) top folder, where package.json, drizzle/, app.yml and .env.example
 * are, whether this code runs as TypeScript from src/ (tsx, tests) or compiled from dist/src/.
 * Worked out from this file's own path, without touching the disk.
 */
export function packageRoot(): string {
  const file = fileURLToPath(import.meta.url);
  const above = dirname(dirname(file));
  // Compiled (dist/src/package-root.js) one level deeper; a checkout itself named dist runs the .ts.
  return file.endsWith('.js') && basename(above) === 'dist' ? dirname(above) : above;
}

/** A path under {@link packageRoot}. */
export function packagePath(...segments: string[]): string {
  return join(packageRoot(), ...segments);
}
