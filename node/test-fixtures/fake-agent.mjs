#!/usr/bin/env node
// A scripted stand-in for an AI coding CLI, run through the same path as a real preset.
// Usage: fake-agent.mjs <mode> [stateDir]
//   edit   - reads the prompt (stdin and GAFFER_PROMPT_FILE), writes it to a file, edits README
//   echo   - like edit, and prints the prompt to stdout (to prove masking)
//   noop   - prints something and changes nothing
//   fail   - prints to stderr and exits 3
//   hang   - starts a child in its process group, records both pids in stateDir, ignores
//            SIGTERM and sleeps forever (for timeout and cancel)
import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

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
    appendFileSync('README.md', '\nEdited by the fake agent.\n');
    process.stdout.write('fake agent: edited 3 files\n');
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
    const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
    if (stateDir) writeFileSync(join(stateDir, 'pids.json'), JSON.stringify({ leader: process.pid, child: child.pid }));
    process.stdout.write('fake agent: hanging\n');
    setInterval(() => {}, 1 << 30);
    break;
  }
  default:
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(64);
}
