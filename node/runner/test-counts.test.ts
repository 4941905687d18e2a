import { describe, expect, it } from 'vitest';
import { createTapCounter, parseJUnitXml, parseTap, sumJUnit } from './test-counts.js';

describe('parseJUnitXml', () => {
  it.each<[string, string, ReturnType<typeof parseJUnitXml>]>([
    [
      'jest-junit style, with failures, errors and skips',
      `<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="jest tests" tests="5" failures="1" errors="0">
  <testsuite name="math" tests="5">
    <testcase classname="math add" name="adds" time="0.01"></testcase>
    <testcase classname="math" name="subtracts"/>
    <testcase name="divides"><failure message="boom">Expected 1 to be 2 &lt;testcase&gt;</failure></testcase>
    <testcase name="multiplies"><error type="TypeError"/></testcase>
    <testcase name="later"><skipped/></testcase>
  </testsuite>
</testsuites>`,
      { passed: 2, failed: 2, skipped: 1 },
    ],
    [
      'pytest style, one suite root, output in CDATA that looks like tags',
      `<testsuite name="pytest" errors="0" failures="0" skipped="0" tests="2"><testcase classname="t" name="a"><system-out><![CDATA[<testcase name="fake"><failure/></testcase>]]></system-out></testcase><testcase classname="t" name="b" /></testsuite>`,
      { passed: 2, failed: 0, skipped: 0 },
    ],
    [
      'totals only on the root',
      `<testsuites tests="10" failures="2" errors="1" skipped="3"><testsuite name="a" tests="4"/><testsuite name="b" tests="6"/></testsuites>`,
      { passed: 4, failed: 3, skipped: 3 },
    ],
    ['totals only on suites', `<testsuite tests="3" failures="1"/><!-- <testcase/> --><testsuite tests="2" skipped="2"></testsuite>`, { passed: 2, failed: 1, skipped: 2 }],
    ['an empty suite', `<testsuite name="none" tests="0"></testsuite>`, { passed: 0, failed: 0, skipped: 0 }],
  ])('reads %s', (_name, xml, expected) => {
    expect(parseJUnitXml(xml)).toEqual(expected);
  });

  it.each([['<project><modelVersion>4.0.0</modelVersion></project>'], ['not xml at all'], [''], ['<!-- <testsuite tests="3"/> -->']])('gives nothing for %j', (xml) => {
    expect(parseJUnitXml(xml)).toBeUndefined();
  });

  it('sums several files, ignoring those that are not JUnit', () => {
    expect(sumJUnit(['<testsuite><testcase name="a"/></testsuite>', '<pom/>', '<testsuite><testcase name="b"><failure/></testcase></testsuite>'])).toEqual({ passed: 1, failed: 1, skipped: 0 });
    expect(sumJUnit(['<pom/>'])).toBeUndefined();
    expect(sumJUnit([])).toBeUndefined();
  });
});

describe('TAP', () => {
  it.each<[string, string, ReturnType<typeof parseTap>]>([
    ['a plain run', 'TAP version 13\n1..3\nok 1 - adds\nnot ok 2 - divides\n  ---\n  message: boom\n  ...\nok 3 # SKIP no network\n', { passed: 1, failed: 1, skipped: 1 }],
    ['a plan at the end, TODO counted as passed', 'ok 1\nnot ok 2 # TODO later\nok 3\n1..3\n', { passed: 3, failed: 0, skipped: 0 }],
    ['node:test subtests: only the top-level points count', 'TAP version 13\n# Subtest: suite\n    ok 1 - inner a\n    not ok 2 - inner b\n    1..2\nnot ok 1 - suite\n1..1\n# tests 2\n', { passed: 0, failed: 1, skipped: 0 }],
    ['fewer points than planned: the missing ones failed', '1..4\nok 1\nok 2\n', { passed: 2, failed: 2, skipped: 0 }],
    ['a bail out', '1..2\nok 1\nBail out! database down\n', { passed: 1, failed: 1, skipped: 0 }],
    ['colours and CRLF', '\x1b[32mok 1 - green\x1b[0m\r\nnot ok 2\r\n1..2\r\n', { passed: 1, failed: 1, skipped: 0 }],
    ['mixed with other output', 'npm run test\n> jest\nlooks ok to me\nok 1 works\nrandom ok 2 line\n', { passed: 1, failed: 0, skipped: 0 }],
    ['skipping everything', '1..0 # SKIP no tests here\n', { passed: 0, failed: 0, skipped: 0 }],
  ])('reads %s', (_name, text, expected) => {
    expect(parseTap(text)).toEqual(expected);
  });

  it('gives nothing for output without TAP', () => {
    expect(parseTap('PASS src/a.test.ts\nTests: 3 passed\n')).toBeUndefined();
    expect(parseTap('')).toBeUndefined();
    expect(parseTap('okay 1\nnot okay\n')).toBeUndefined();
  });

  it('reads output fed in chunks split anywhere, the last line unterminated', () => {
    const text = '1..3\nok 1 a\nnot ok 2 b\nok 3 c # skip';
    for (let cut = 1; cut < text.length; cut++) {
      const c = createTapCounter();
      c.feed(text.slice(0, cut));
      c.feed(text.slice(cut));
      expect(c.result()).toEqual({ passed: 1, failed: 1, skipped: 1 });
    }
  });
});
