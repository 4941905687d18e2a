#!/usr/bin/env node
// The `gaffer-node` command. It loads the node agent and runs its command line; nothing else
// belongs here. The sources are TypeScript, loaded through tsx for now: once the build ships
// compiled JavaScript, this becomes `import('../dist/node/main.js')` without the register call.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../node/main.ts');
await runCli();
