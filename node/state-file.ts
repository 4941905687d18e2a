import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import type { RegisterNodeResponse } from '../src/protocol/node-api.js';

/** The state file's name inside the state folder. */
export const STATE_FILE = 'node-state.json';

const nodeState = z.object({
  /** A short random id for this machine, made once: the default name is the host name and it. */
  machine_id: z.string().regex(/^[a-f0-9]{6,32}$/),
  /** The node's own credential, from its registration, and the server it belongs to. */
  registration: z
    .object({
      server_url: z.string(),
      node_id: z.string().uuid(),
      node_token: z.string().min(1),
      signing_secret: z.string().min(1),
      name: z.string(),
    })
    .optional(),
});
/** What the state file holds. */
export type NodeState = z.infer<typeof nodeState>;

/** Thrown when the state file exists but cannot be used; the message says which file and why. */
export class NodeStateError extends Error {
  readonly code = 'state_invalid' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NodeStateError';
  }
}

/** A credential kept from an earlier registration. */
export type SavedCredential = Pick<RegisterNodeResponse, 'node_id' | 'node_token' | 'signing_secret'>;

/** The node's identity on disk: its machine id and, once registered, its credential. */
export type NodeStateStore = {
  readonly path: string;
  readonly machineId: string;
  /** The saved credential, if it was issued by `serverUrl`: a credential never goes to another server. */
  credential(serverUrl: string): SavedCredential | undefined;
  /** Saves a new registration, replacing the old one (whose credential the server has already retired). */
  saveRegistration(serverUrl: string, name: string, reg: RegisterNodeResponse): Promise<void>;
};

/**
 * Opens (creating on first use) the state file in `dir`: the folder mode 0700, the file 0600,
 * written whole to a temporary file and renamed over, so a crash never leaves half a credential.
 * A file that does not parse is an error, not a reason to start over: a new identity would
 * orphan the registered node.
 */
export async function openStateFile(dir: string): Promise<NodeStateStore> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, STATE_FILE);
  let state: NodeState;
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw new NodeStateError(`cannot read the node state file ${path}: ${err.code ?? err.message}`, { cause: err });
  });
  if (text === undefined) {
    state = { machine_id: randomBytes(3).toString('hex') };
    await write(path, state);
  } else {
    let parsed: z.ZodSafeParseResult<NodeState>;
    try {
      parsed = nodeState.safeParse(JSON.parse(text));
    } catch (cause) {
      throw new NodeStateError(`the node state file ${path} is not JSON; restore it, or delete it to register as a new node`, { cause });
    }
    if (!parsed.success) {
      throw new NodeStateError(`the node state file ${path} is not valid; restore it, or delete it to register as a new node`);
    }
    state = parsed.data;
    // A file someone widened is narrowed again: it holds the node's credential.
    if (((await stat(path)).mode & 0o077) !== 0) await chmod(path, 0o600);
  }

  return {
    path,
    machineId: state.machine_id,
    credential(serverUrl) {
      const r = state.registration;
      if (!r || r.server_url !== serverUrl) return undefined;
      return { node_id: r.node_id, node_token: r.node_token, signing_secret: r.signing_secret };
    },
    async saveRegistration(serverUrl, name, reg) {
      state = {
        ...state,
        registration: { server_url: serverUrl, node_id: reg.node_id, node_token: reg.node_token, signing_secret: reg.signing_secret, name },
      };
      await write(path, state);
    },
  };
}

async function write(path: string, state: NodeState): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(state, null, 2)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await chmod(tmp, 0o600);
  await rename(tmp, path);
}

/** The default node name: the host name, reduced to what the server accepts, and the machine id. */
export function defaultNodeName(machineId: string, host = hostname()): string {
  const cleaned = host.replace(/[^A-Za-z0-9._-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 90);
  return `${cleaned.length > 0 ? cleaned : 'gaffer-node'}-${machineId}`;
}

/**
 * Removes the registration token from an environment (the process's own, by default), so no
 * child process (the agent CLI, git, setup commands) inherits it. The node keeps using its own
 * credential from the state file after the first registration.
 */
export function dropRegistrationToken(env: NodeJS.ProcessEnv = process.env): void {
  delete env.GAFFER_REGISTRATION_TOKEN;
  if (env !== process.env) delete process.env.GAFFER_REGISTRATION_TOKEN;
}

/**
 * What the agent starts from: the environment's registration token dropped (see
 * {@link dropRegistrationToken}), the state file opened, and the default name (the host name and
 * the machine id) filled in unless GAFFER_NODE_NAME set one.
 */
export async function prepareNodeIdentity<C extends { stateDir: string; nameGiven: boolean; name: string }>(
  config: C,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ config: C; identity: NodeStateStore }> {
  dropRegistrationToken(env);
  const identity = await openStateFile(config.stateDir);
  return { config: config.nameGiven ? config : { ...config, name: defaultNodeName(identity.machineId) }, identity };
}
