import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { checkStructure, specifiers } from './check-structure.js';

let root: string | undefined;
afterEach(() => {
  if (root) rmSync(root, { recursive: true, force: true });
  root = undefined;
});

function tree(files: Record<string, string>): string {
  root = mkdtempSync(join(tmpdir(), 'gaffer-structure-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('check:structure', () => {
  it('reads static, type-only, side-effect, re-export and dynamic imports', () => {
    const text = [
      "import { a } from './a.js';",
      "import type {\n  B,\n} from '../b.js';",
      "import './c.js';",
      "export * from './d.js';",
      "const e = await import('./e.js');",
    ].join('\n');
    expect(specifiers(text)).toEqual(['./a.js', '../b.js', './c.js', './d.js', './e.js']);
  });

  it('passes a clean tree', () => {
    const dir = tree({ 'src/a.ts': "import { b } from './b.js';\nexport const a = b;\n", 'src/b.ts': 'export const b = 1;\n' });
    expect(checkStructure(dir)).toEqual([]);
  });

  it('names every file in a circle, a file over 400 lines, and a domain/ file that imports upwards', () => {
    const dir = tree({
      'src/domain/x.ts': "import type { Y } from './y.js';\nimport { Hono } from 'hono';\nimport { r } from '../api/r.js';\nexport type X = Y;\n",
      'src/domain/y.ts': "import type { X } from './x.js';\nexport type Y = X;\n",
      'src/api/r.ts': 'export const r = 1;\n',
      'node/long.ts': 'export const n = 1;\n'.repeat(401),
    });
    const problems = checkStructure(dir);
    expect(problems).toContain('node/long.ts: 401 lines (the limit is 400): split it by responsibility');
    expect(problems).toContain('src/domain/x.ts: domain/ imports hono');
    expect(problems.some((p) => p.startsWith('src/domain/x.ts: domain/ imports src/api/r.ts'))).toBe(true);
    expect(problems).toContain('import circle: src/domain/x.ts ↔ src/domain/y.ts');
  });
});
