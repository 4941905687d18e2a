/**
 * Summarises a V8 `.cpuprofile` (from `node --cpu-prof`): the top frames by self time and by
 * inclusive time, and self time by package. For `bench:webhooks` it also splits the profile into
 * the stretches where bare Probot or Gaffer was serving (100 ms buckets, classed by which server's
 * request frames they hold), so each side's costs show apart:
 *
 *   node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx bench/webhooks.ts
 *   npx tsx scripts/cpuprof-top.ts /tmp/prof/CPU.<largest>.cpuprofile [frames=20]
 */
import { readFileSync } from 'node:fs';

type CallFrame = { functionName: string; url: string; lineNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; children?: number[] };
type Profile = { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] };
type Tally = { total: number; self: Map<string, number>; inclusive: Map<string, number>; packages: Map<string, number> };

const BUCKET_US = 100_000;

const where = (url: string): string => {
  if (!url) return '';
  if (url.startsWith('wasm://')) return 'pglite-wasm';
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\/(.*)$/);
  return m ? `${m[1]}/${m[2]!.split('/').at(-1)}` : url.replace(/^file:\/\/.*?\/(src|bench|node|test)\//, '$1/');
};
const frameName = (f: CallFrame) => `${f.functionName || '(anonymous)'}  ${where(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`;
const packageOf = (f: CallFrame): string => {
  if (!f.url) return f.functionName;
  if (f.url.startsWith('wasm://')) return '@electric-sql/pglite (wasm)';
  const m = f.url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)\//);
  if (m) return m[1]!;
  return f.url.startsWith('node:') ? 'node internals' : 'project code';
};

function summarise(profile: Profile, frames: number): string {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stack = (id: number): ProfileNode[] => {
    const out: ProfileNode[] = [];
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) out.push(byId.get(cur)!);
    return out;
  };
  // Which server a stack is serving: Hono's frames are Gaffer's, Probot's middleware the bare app's.
  const sideOf = (id: number): 'gaffer' | 'bare' | undefined => {
    for (const n of stack(id)) {
      const { url, functionName } = n.callFrame;
      if (url.includes('@hono/node-server') || url.includes('/hono/')) return 'gaffer';
      if (url.includes('@octokit/webhooks/') && functionName === 'octokitWebhooksMiddleware') return 'bare';
    }
    return undefined;
  };
  const times: number[] = [];
  let t = profile.startTime;
  for (const d of profile.timeDeltas) times.push((t += d));
  const buckets = new Map<number, { gaffer: number; bare: number }>();
  profile.samples.forEach((id, i) => {
    const side = sideOf(id);
    if (!side) return;
    const b = Math.floor((times[i]! - profile.startTime) / BUCKET_US);
    const c = buckets.get(b) ?? { gaffer: 0, bare: 0 };
    c[side]++;
    buckets.set(b, c);
  });
  const tallies: Record<string, Tally> = {};
  const tally = (name: string) => (tallies[name] ??= { total: 0, self: new Map(), inclusive: new Map(), packages: new Map() });
  const add = (m: Map<string, number>, k: string, v: number) => m.set(k, (m.get(k) ?? 0) + v);
  profile.samples.forEach((id, i) => {
    const dt = (times[i + 1] ?? times[i]!) - times[i]!;
    const c = buckets.get(Math.floor((times[i]! - profile.startTime) / BUCKET_US));
    const phase = c ? (c.gaffer > c.bare ? 'Gaffer serving' : 'bare Probot serving') : 'other (start-up, idle)';
    const node = byId.get(id)!;
    for (const x of [tally('whole profile'), tally(phase)]) {
      x.total += dt;
      add(x.self, frameName(node.callFrame), dt);
      add(x.packages, packageOf(node.callFrame), dt);
      for (const name of new Set(stack(id).map((n) => frameName(n.callFrame)))) add(x.inclusive, name, dt);
    }
  });
  const lines: string[] = [];
  for (const [name, x] of Object.entries(tallies)) {
    const row = ([k, v]: [string, number]) => `${((100 * v) / x.total).toFixed(1).padStart(5)}% ${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`;
    const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(row);
    lines.push(`\n=== ${name}: ${(x.total / 1e6).toFixed(2)} s sampled`, '-- self time', ...top(x.self, frames));
    lines.push('-- inclusive time (skipping the root and event-loop frames)', ...top(new Map([...x.inclusive].filter(([k]) => !/^\((root|program)\)|processTicksAndRejections|runMicrotasks|^emit /.test(k))), frames));
    lines.push('-- self time by package', ...top(x.packages, 12));
  }
  return lines.join('\n');
}

const [file, frames] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: tsx scripts/cpuprof-top.ts <file.cpuprofile> [frames]\n');
  process.exit(2);
}
process.stdout.write(`${summarise(JSON.parse(readFileSync(file, 'utf8')) as Profile, Number(frames ?? 20))}\n`);
