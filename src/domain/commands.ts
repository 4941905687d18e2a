/** A command found in a comment. */
export type Command = { kind: 'start'; text: string } | { kind: 'stop' };

/**
 * Finds the first `/start [text]` or `/stop` at the start of a line. Quoted lines, fenced and
 * indented code, and HTML comments never count, so quoting someone's `/start` triggers nothing.
 */
export function parseCommand(body: string): Command | undefined {
  const text = body.replace(/\r\n?/g, '\n').replace(/<!--[\s\S]*?(-->|$)/g, '');
  let fence: string | undefined;
  for (const line of text.split('\n')) {
    const fenceMatch = line.match(/^ {0,3}(`{3,}|~{3,})/);
    if (fenceMatch) {
      const marker = fenceMatch[1]!;
      if (fence === undefined) fence = marker;
      else if (marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      continue;
    }
    if (fence !== undefined) continue;
    if (/^( {4}|\t)/.test(line)) continue;
    const m = line.match(/^ {0,3}\/(start|stop)(?:[ \t]+(.*))?$/i);
    if (!m) continue;
    if (m[1]!.toLowerCase() === 'stop') return { kind: 'stop' };
    return { kind: 'start', text: (m[2] ?? '').trim() };
  }
  return undefined;
}
