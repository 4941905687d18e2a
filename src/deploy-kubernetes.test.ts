import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Deployment } from 'kubernetes-models/apps/v1';
import { Namespace, Secret, Service } from 'kubernetes-models/v1';
import { ScaledJob, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNodeConfig } from '../node/config.js';
import { createHarness, type Harness, jsonInit } from '../test/harness.js';
import { loadConfig } from './config.js';

const ROOT = process.cwd();
const DIR = join(ROOT, 'deploy/kubernetes');

type Doc = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; [k: string]: any };

/** Each kind the manifests use: the package's model (its JSON schema) and its TypeScript type. */
const MODELS: Record<string, { model: { new (data: any): { validate(): void } }; module: string; type: string }> = {
  'v1/Namespace': { model: Namespace, module: 'kubernetes-models/v1', type: 'INamespace' },
  'v1/Secret': { model: Secret, module: 'kubernetes-models/v1', type: 'ISecret' },
  'v1/Service': { model: Service, module: 'kubernetes-models/v1', type: 'IService' },
  'apps/v1/Deployment': { model: Deployment, module: 'kubernetes-models/apps/v1', type: 'IDeployment' },
  'keda.sh/v1alpha1/ScaledJob': { model: ScaledJob, module: '@kubernetes-models/keda/keda.sh/v1alpha1', type: 'IScaledJob' },
  'keda.sh/v1alpha1/TriggerAuthentication': { model: TriggerAuthentication, module: '@kubernetes-models/keda/keda.sh/v1alpha1', type: 'ITriggerAuthentication' },
};

function loadManifests(): Array<{ file: string; doc: Doc }> {
  return readdirSync(DIR)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(DIR, file), 'utf8')).map((d) => {
        if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
        return { file, doc: d.toJS() as Doc };
      }),
    );
}

/** The package's JSON-schema validation (types, required fields, enums); messages, empty when valid. */
function schemaErrors(doc: Doc): string[] {
  const entry = MODELS[`${doc.apiVersion}/${doc.kind}`];
  if (!entry) return [`no schema for ${doc.apiVersion} ${doc.kind}`];
  try {
    new entry.model(doc).validate();
    return [];
  } catch (err) {
    return [(err as Error).message];
  }
}

/**
 * The schemas allow fields they do not know (the API server drops them silently), so a misspelt
 * field would pass them. Each document is also type-checked as an object literal of the package's
 * type, which refuses any field the type lacks, at any depth, as `kubectl apply --validate=strict` would.
 */
function unknownFieldErrors(docs: Doc[]): string[] {
  const fileName = join(ROOT, '__kubernetes_manifests__.ts');
  const source = docs
    .map((doc, i) => {
      const entry = MODELS[`${doc.apiVersion}/${doc.kind}`]!;
      return `import type { ${entry.type} as T${i} } from '${entry.module}';\nexport const doc${i}: T${i} = ${JSON.stringify(doc, null, 1)};`;
    })
    .join('\n');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    skipLibCheck: true,
    types: [],
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.getSourceFile = (name, ...rest) => (name === fileName ? ts.createSourceFile(name, source, ts.ScriptTarget.ES2022, true) : getSourceFile(name, ...rest));
  host.fileExists = (name) => name === fileName || fileExists(name);
  const program = ts.createProgram([fileName], options, host);
  return ts.getPreEmitDiagnostics(program).map((d) => {
    const where = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
    const line = where ? source.split('\n')[where.line]?.trim() : '';
    return `${ts.flattenDiagnosticMessageText(d.messageText, '\n')} (at ${line})`;
  });
}

/** KEDA's valueLocation is a GJSON path; the manifests use only its plain dotted form. */
function valueAt(json: unknown, path: string): unknown {
  expect(path).toMatch(/^[a-z_]+(\.[a-z_]+)*$/);
  return path.split('.').reduce<any>((v, k) => (v === undefined || v === null ? undefined : v[k]), json);
}

const byKind = (docs: Doc[], kind: string, name?: string) => docs.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));

/** A container's environment, secret references filled from the Secrets in the manifests, fieldRefs from a sample pod. */
function envOf(container: any, secrets: Doc[], namespace: string, overrides: Record<string, string>): Record<string, string> {
  const secret = (name: string) => byKind(secrets, 'Secret', name).find((s) => s.metadata.namespace === namespace)?.stringData ?? {};
  const env: Record<string, string> = {};
  for (const ref of container.envFrom ?? []) Object.assign(env, secret(ref.secretRef.name));
  for (const e of container.env ?? []) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) env[e.name] = secret(e.valueFrom.secretKeyRef.name)[e.valueFrom.secretKeyRef.key];
    else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = 'gaffer-node-x7k2p-9q4zr';
    else throw new Error(`unhandled env source for ${e.name}`);
  }
  return { ...env, ...overrides };
}

describe('deploy/kubernetes', () => {
  const manifests = loadManifests();
  const docs = manifests.map((m) => m.doc);
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('every document passes the Kubernetes and KEDA schemas and carries no field they do not know', () => {
    expect(docs.map((d) => `${d.kind}/${d.metadata.name}`).sort()).toEqual(
      ['Deployment/gaffer', 'Namespace/gaffer', 'Namespace/gaffer-nodes', 'ScaledJob/gaffer-node', 'Secret/gaffer-agent-keys', 'Secret/gaffer-node-registration', 'Secret/gaffer-server', 'Service/gaffer', 'TriggerAuthentication/gaffer-queue-reader'].sort(),
    );
    for (const { file, doc } of manifests) expect(schemaErrors(doc), `${file} ${doc.kind}/${doc.metadata.name}`).toEqual([]);
    expect(unknownFieldErrors(docs)).toEqual([]);
  }, 60_000);

  it('a wrong field fails: a misspelt one anywhere, a wrong type, a missing required one', () => {
    // TypeScript names the first unknown field of a literal, so each document carries one.
    const deep = structuredClone(byKind(docs, 'ScaledJob')[0]!);
    deep.spec.jobTargetRef.template.spec.containers[0].securityContext.privilegedd = false;
    const top = structuredClone(byKind(docs, 'ScaledJob')[0]!);
    top.spec.pollingIntervall = 10;
    const server = structuredClone(byKind(docs, 'Deployment')[0]!);
    server.spec.template.spec.containers[0].readinessProbe.httpGett = { path: '/readyz' };
    const errors = unknownFieldErrors([deep, top, server]);
    expect(errors).toHaveLength(3);
    expect(errors[0]).toMatch(/"privilegedd"' does not exist in type 'ISecurityContext'/);
    expect(errors[1]).toMatch(/"pollingIntervall"' does not exist in type 'IScaledJobSpec'/);
    expect(errors[2]).toMatch(/"httpGett"' does not exist in type 'IProbe'/);
    const typed = structuredClone(byKind(docs, 'ScaledJob')[0]!);
    typed.spec.maxReplicaCount = 'ten';
    expect(schemaErrors(typed).join('\n')).toMatch(/maxReplicaCount/);
    const deployment = structuredClone(byKind(docs, 'Deployment')[0]!);
    delete deployment.spec.selector;
    expect(schemaErrors(deployment).join('\n')).toMatch(/selector/);
  }, 60_000);

  it('the server reads its Secret as a valid configuration, and the Service reaches its port', () => {
    const deployment = byKind(docs, 'Deployment', 'gaffer')[0]!;
    const container = deployment.spec.template.spec.containers[0];
    // The Secret's placeholders, replaced as an operator would.
    const env = envOf(container, docs, 'gaffer', { CREDENTIAL_KEY: 'ab'.repeat(32), ADMIN_PASSWORD: 'a-long-password' });
    const config = loadConfig(env);
    expect(config.port).toBe(3000);
    // Every key is one the server knows: a misspelt name would be ignored, not refused.
    const documented = readFileSync(join(ROOT, '.env.example'), 'utf8');
    for (const key of Object.keys(env)) expect(documented, `${key} is in .env.example`).toMatch(new RegExp(`^#? ?${key}=`, 'm'));
    const service = byKind(docs, 'Service', 'gaffer')[0]!;
    expect(service.spec.selector).toEqual(deployment.spec.template.metadata.labels);
    expect(container.ports.map((p: any) => p.name)).toContain(service.spec.ports[0].targetPort);
  });

  it('the ScaledJob runs ephemeral pull nodes with what bubblewrap needs and no privilege, scaled on the queue API the server answers', async () => {
    const job = byKind(docs, 'ScaledJob', 'gaffer-node')[0]!;
    expect(job.spec).toMatchObject({ minReplicaCount: 0, scalingStrategy: { strategy: 'accurate' } });
    const pod = job.spec.jobTargetRef.template.spec;
    const container = pod.containers[0];
    expect(pod).toMatchObject({ restartPolicy: 'Never', hostUsers: false, automountServiceAccountToken: false });
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'Unconfined' }, appArmorProfile: { type: 'Unconfined' } });
    expect(container.securityContext).toMatchObject({ privileged: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, procMount: 'Unmasked' });
    expect(job.spec.jobTargetRef.backoffLimit).toBe(0);

    // The node's environment is a valid ephemeral pull node's configuration.
    const env = envOf(container, docs, 'gaffer-nodes', { GAFFER_REGISTRATION_TOKEN: 'gfr_' + 'x'.repeat(40) });
    const node = loadNodeConfig(env);
    const documented = readFileSync(join(ROOT, 'node/.env.example'), 'utf8');
    const passed = new Set(env.GAFFER_SANDBOX_ENV!.split(','));
    for (const key of Object.keys(env).filter((k) => !passed.has(k))) {
      expect(documented, `${key} is in node/.env.example`).toMatch(new RegExp(`^#? ?${key}=`, 'm'));
    }
    expect(node).toMatchObject({ mode: 'pull', capacity: 1, ephemeral: { idleMs: 120_000 }, sandbox: { mode: 'bwrap' }, agent: { preset: 'claude' } });
    const service = byKind(docs, 'Service', 'gaffer')[0]!;
    expect(new URL(node.serverUrl).host).toBe(`${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local:${service.spec.ports[0].port}`);

    // KEDA reads the queue with the token the nodes register with.
    const [trigger] = job.spec.triggers;
    expect(trigger).toMatchObject({ type: 'metrics-api', metadata: { format: 'json', authMode: 'bearer' } });
    const auth = byKind(docs, 'TriggerAuthentication', trigger.authenticationRef.name)[0]!;
    const tokenRef = container.env.find((e: any) => e.name === 'GAFFER_REGISTRATION_TOKEN').valueFrom.secretKeyRef;
    expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'token', name: tokenRef.name, key: tokenRef.key }]);
    const url = new URL(trigger.metadata.url);
    expect(`${url.protocol}//${url.host}`).toBe(node.serverUrl);
    expect(url.searchParams.get('labels')!.split(',')).toContain(`agent:${node.agent.preset}`);
    expect(url.searchParams.get('sandbox')).toBe(node.sandbox.mode);

    // Asked as KEDA asks it, the real server answers with a number at valueLocation.
    const admin = await h.signIn({ admin: true });
    const created = await h.app.request('/api/v1/registration-tokens', jsonInit('POST', admin.token, { name: 'keda', ephemeral: true }));
    const token = ((await created.json()) as { token: string }).token;
    const res = await h.app.request(`${url.pathname}${url.search}`, jsonInit('GET', token));
    expect(res.status).toBe(200);
    expect(valueAt(await res.json(), trigger.metadata.valueLocation)).toBe(0);
    expect(Number(trigger.metadata.targetValue)).toBe(1);
  });
});
