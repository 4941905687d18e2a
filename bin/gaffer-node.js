#!/usr/bin/env node
// The `gaffer-node` command. It loads the node agent and runs its command line; nothing else
// belongs here. A production install (`npm ci --omit=dev && npm run build`, the Docker image)
// has no tsx and runs the compiled dist/; a checkout with dev dependencies runs the TypeScript
// sources through tsx, so it is never behind them.
let main;
try {
  const { register } = await import('tsx/esm/api');
  register();
  main = await import('../node/main.ts');
} catch (err) {
  if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes("'tsx")) throw err;
  main = await import('../dist/node/main.js');
}
await main.runCli();
