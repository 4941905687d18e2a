#!/usr/bin/env node
// The demo's AI coding CLI: a script, so `npm run demo` needs no model, key or network. It reads
// the prompt Gaffer gives every agent (on stdin, and in GAFFER_PROMPT_FILE), and edits the
// working tree as an agent would; Gaffer then commits and pushes what it changed.
import { appendFileSync, writeFileSync } from 'node:fs';

const chunks = [];
for await (const c of process.stdin) chunks.push(c);
const prompt = Buffer.concat(chunks).toString('utf8');

process.stdout.write(`demo agent: got a prompt of ${prompt.length} characters for issue #${process.env.GAFFER_ISSUE_NUMBER}\n`);
writeFileSync(
  'GREETING.md',
  `# Hello from Gaffer\n\nWritten by the demo's scripted agent on branch ${process.env.GAFFER_BRANCH}.\n\n## The prompt it was given\n\n${prompt
    .split('\n')
    .map((l) => `> ${l}`)
    .join('\n')}\n`,
);
appendFileSync('README.md', '\nSee GREETING.md.\n');
process.stdout.write('demo agent: wrote GREETING.md and linked it from README.md\n');
