import type { NodeTransport } from '../domain/ports.js';

/**
 * The transport the task lifecycle uses: push nodes through `push` (signed HTTP); pull nodes are
 * never called. A pull node's long poll carries both its work and its cancels, and the database's
 * change notifications wake that poll on whichever server holds it, so a cancel is `accepted` here.
 */
export function transportByNodeMode(push: NodeTransport): NodeTransport {
  return {
    deliver: (node, body) =>
      node.mode === 'pull'
        ? Promise.resolve({ kind: 'refused', status: 409, reason: 'a pull node collects its work with its poll', retryable: false })
        : push.deliver(node, body),
    cancel: (node, taskId) => (node.mode === 'pull' ? Promise.resolve({ kind: 'accepted' }) : push.cancel(node, taskId)),
  };
}
