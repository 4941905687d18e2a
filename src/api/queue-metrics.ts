import type { QueueDepthGroup } from '../domain/queue-depth.js';

/** A Prometheus label value: backslash, double quote and newline escaped (labels come from `/start`). */
function labelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/**
 * `gaffer_queue_depth{labels="agent:claude,gpu",sandbox_required="true"} 3`: queued tasks per
 * required label set (sorted, comma-joined; empty for none) and sandbox requirement.
 */
export function queueDepthLines(groups: readonly QueueDepthGroup[]): string[] {
  return [
    '# HELP gaffer_queue_depth Tasks waiting for a node, by required labels and sandbox requirement.',
    '# TYPE gaffer_queue_depth gauge',
    ...groups.map((g) => `gaffer_queue_depth{labels="${labelValue(g.labels.join(','))}",sandbox_required="${g.sandboxRequired}"} ${g.queued}`),
  ];
}
