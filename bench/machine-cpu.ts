/**
 * Where the machine's CPU went while something ran (bench:fairness): every process's CPU time read
 * from `/proc` before and after, summed into the parts of the end-to-end stack. On a 2-core
 * machine the server, the node, the webhook sender and PostgreSQL share the cores that, in
 * production, are several machines; this says how much each part took. Linux only; elsewhere
 * every figure is 0.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** The parts of the stack a process is counted in. */
export const CPU_PARTS = ['server', 'node', 'sender', 'postgres', 'other'] as const;
export type CpuPart = (typeof CPU_PARTS)[number];

/** CPU ms by process, and the machine's busy ms, at one moment. */
export type CpuSnapshot = { busyMs: number; processes: Map<number, { part: CpuPart; ms: number }> };

/** CPU ms spent by each part, and by the whole machine (every process, the kernel's too). */
export type CpuSpent = Record<CpuPart, number> & { machine: number };

const TICK_MS = 10;

/**
 * CPU ms of a process and its reaped children, from its `/proc/<pid>/stat` line (0 for an empty
 * one): utime, stime, cutime and cstime, fields 14 to 17 counted from the state (field 3), in
 * ticks of 10 ms. A node's git, agent and verify count once reaped.
 */
export function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields.slice(11, 15).reduce((sum, f) => sum + (Number(f) || 0), 0) * TICK_MS;
}

/** What part of the stack a process is, from its name and command line (the server is this process). */
function partOf(pid: number, comm: string): CpuPart {
  if (pid === process.pid) return 'server';
  if (comm === 'postgres') return 'postgres';
  let cmdline = '';
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return 'other';
  }
  if (cmdline.includes('--bench-node')) return 'node';
  if (cmdline.includes('--webhook-sender')) return 'sender';
  return 'other';
}

/** Reads every process's CPU time (its own and its reaped children's) and the machine's busy time. */
export function cpuSnapshot(): CpuSnapshot {
  const processes = new Map<number, { part: CpuPart; ms: number }>();
  let busyMs = 0;
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    // All ticks but idle and iowait.
    busyMs = (cpu.reduce((a, b) => a + b, 0) - cpu[3]! - cpu[4]!) * TICK_MS;
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      const pid = Number(entry);
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      } catch {
        continue; // ended meanwhile
      }
      processes.set(pid, { part: partOf(pid, stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))), ms: statCpuMs(stat) });
    }
  } catch {
    // Not Linux: nothing to read.
  }
  return { busyMs, processes };
}

/** The CPU each part spent between two snapshots (a process that started meanwhile counts from 0). */
export function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): CpuSpent {
  const spent: CpuSpent = { server: 0, node: 0, sender: 0, postgres: 0, other: 0, machine: after.busyMs - before.busyMs };
  for (const [pid, p] of after.processes) spent[p.part] += Math.max(0, p.ms - (before.processes.get(pid)?.ms ?? 0));
  return spent;
}
