/**
 * Test counts from what a verify command leaves: JUnit XML files it wrote, or TAP on its output.
 * Pure text parsers, tolerant of the dialects reporters write (jest-junit, pytest, surefire, go
 * test via gotestsum, node:test, tap, bats); anything unreadable gives no counts, never an error.
 */

/** Passed, failed (failures and errors) and skipped tests. */
export type Counts = { passed: number; failed: number; skipped: number };

const sum = (a: Counts, b: Counts): Counts => ({ passed: a.passed + b.passed, failed: a.failed + b.failed, skipped: a.skipped + b.skipped });

/** One attribute's integer value in a start tag, or 0. */
function intAttr(tag: string, name: string): number {
  const m = tag.match(new RegExp(`\\s${name}\\s*=\\s*["'](\\d+)["']`));
  return m ? Number(m[1]) : 0;
}

/**
 * The counts in one JUnit XML document; undefined when it is not one (no `<testsuite>` or
 * `<testsuites>` element). Each `<testcase>` counts once: with a `<failure>` or `<error>` it
 * failed, with `<skipped>` it was skipped. A document with no test cases (some reporters write
 * only totals) is read from its suites' `tests`, `failures`, `errors` and `skipped` attributes.
 */
export function parseJUnitXml(xml: string): Counts | undefined {
  // Comments and CDATA (captured output) may hold anything, tags included.
  const text = xml.replace(/<!--[\s\S]*?-->/g, '').replace(/<!\[CDATA\[[\s\S]*?\]\]>/g, '');
  if (!/<testsuites?[\s>/]/.test(text)) return undefined;
  let counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  let cases = 0;
  const caseRe = /<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase\s*>)/g;
  for (let m = caseRe.exec(text); m; m = caseRe.exec(text)) {
    cases++;
    const body = m[2] ?? '';
    if (/<(failure|error)[\s>/]/.test(body)) counts.failed++;
    else if (/<skipped[\s>/]/.test(body)) counts.skipped++;
    else counts.passed++;
  }
  if (cases > 0) return counts;
  // Totals only: the outermost element that carries them (a <testsuites> sums its suites).
  const root = text.match(/<testsuites\b[^>]*>/)?.[0];
  const tags = root && /\stests\s*=/.test(root) ? [root] : [...text.matchAll(/<testsuite\b[^>]*>/g)].map((m) => m[0]);
  for (const tag of tags) {
    const tests = intAttr(tag, 'tests');
    const failed = intAttr(tag, 'failures') + intAttr(tag, 'errors');
    const skipped = intAttr(tag, 'skipped') + intAttr(tag, 'disabled');
    counts = sum(counts, { passed: Math.max(0, tests - failed - skipped), failed, skipped });
  }
  return counts;
}

/** Counts over several JUnit files; undefined when none of them is one. */
export function sumJUnit(documents: readonly string[]): Counts | undefined {
  let total: Counts | undefined;
  for (const doc of documents) {
    const c = parseJUnitXml(doc);
    if (c) total = total ? sum(total, c) : c;
  }
  return total;
}

// Terminal colours would hide `ok` at the start of a line.
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g;

/**
 * A TAP reader fed output as it arrives, in chunks split anywhere. Only top-level test points
 * count (`ok`, `not ok` at the start of a line; indented ones are subtests, summed by their
 * parent's line). `# SKIP` counts as skipped; `# TODO` as passed whatever its result, as TAP says.
 * A `Bail out!` or a plan that more points than seen make the missing ones failed.
 */
export function createTapCounter(): { feed: (chunk: string) => void; result: () => Counts | undefined } {
  let partial = '';
  let counts: Counts = { passed: 0, failed: 0, skipped: 0 };
  let points = 0;
  let planned: number | undefined;
  let bailed = false;
  const line = (raw: string) => {
    const l = raw.replace(ANSI, '').replace(/\r$/, '');
    const plan = l.match(/^1\.\.(\d+)(\s|$)/);
    if (plan && planned === undefined) {
      planned = Number(plan[1]);
      return;
    }
    if (/^Bail out!/.test(l)) {
      bailed = true;
      return;
    }
    const m = l.match(/^(not ok|ok)\b(.*)$/);
    if (!m) return;
    points++;
    const directive = m[2]!.match(/#\s*(SKIP|TODO)\b/i)?.[1]?.toUpperCase();
    if (directive === 'SKIP') counts.skipped++;
    else if (directive === 'TODO' || m[1] === 'ok') counts.passed++;
    else counts.failed++;
  };
  return {
    feed(chunk) {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      // A line longer than any test point is output, not TAP: do not hold it all.
      if (partial.length > 64 * 1024) partial = '';
      for (const l of lines) line(l);
    },
    result() {
      if (partial) {
        line(partial);
        partial = '';
      }
      if (points === 0 && planned === undefined) return undefined;
      const missing = planned !== undefined && planned > points ? planned - points : 0;
      if (missing > 0 || bailed) counts = { ...counts, failed: counts.failed + missing };
      return counts;
    },
  };
}

/** Counts in a whole TAP text; undefined when it holds no TAP. */
export function parseTap(text: string): Counts | undefined {
  const c = createTapCounter();
  c.feed(text);
  return c.result();
}
