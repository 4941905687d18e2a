import { describe, expect, it } from 'vitest';
import { describeTouches, touchesTestsOrConfig, type TouchRule } from './touches-tests.js';

const ruleOf = (path: string, verify: string[] = []): TouchRule | undefined => touchesTestsOrConfig([path], verify)[0]?.rule;

describe('touchesTestsOrConfig', () => {
  it.each<[string, TouchRule]>([
    // JavaScript / TypeScript
    ['src/app.test.ts', 'test'],
    ['src/app.spec.tsx', 'test'],
    ['lib/util.test.mjs', 'test'],
    ['web/login.cy.js', 'test'],
    ['src/__tests__/app.js', 'test'],
    ['src/__snapshots__/app.test.ts.snap', 'test'],
    ['packages/a/test/helpers.js', 'test'],
    // Python
    ['tests/test_api.py', 'test'],
    ['pkg/test_models.py', 'test'],
    ['pkg/models_test.py', 'test'],
    ['conftest.py', 'test'],
    // Go, Ruby, Rust, JVM, .NET, PHP, Swift, Elixir, Dart, C++, shell
    ['internal/server/handler_test.go', 'test'],
    ['pkg/x/testdata/golden.json', 'test'],
    ['spec/models/user_spec.rb', 'test'],
    ['test/unit/user_test.rb', 'test'],
    ['crate/tests/integration.rs', 'test'],
    ['src/test/java/com/x/FooTest.java', 'test'],
    ['app/src/main/kotlin/FooTests.kt', 'test'],
    ['Foo.Tests/BarTests.cs', 'test'],
    ['tests/Unit/UserTest.php', 'test'],
    ['Tests/AppTests/AppTests.swift', 'test'],
    ['test/my_app_test.exs', 'test'],
    ['lib/widget_test.dart', 'test'],
    ['src/parser_unittest.cc', 'test'],
    ['t/cli.bats', 'test'],
    // Test runners' configuration
    ['vitest.config.ts', 'test_config'],
    ['jest.config.js', 'test_config'],
    ['pytest.ini', 'test_config'],
    ['.mocharc.yml', 'test_config'],
    ['phpunit.xml.dist', 'test_config'],
    ['.coveragerc', 'test_config'],
    // CI
    ['.github/workflows/ci.yml', 'ci'],
    ['.github/actions/setup/action.yml', 'ci'],
    ['.github/gaffer.yml', 'ci'],
    ['.gitlab-ci.yml', 'ci'],
    ['.circleci/config.yml', 'ci'],
    ['Jenkinsfile', 'ci'],
    // Agent configuration, at any depth where CLIs read nested files
    ['.claude/settings.json', 'agent_config'],
    ['.claude/commands/fix.md', 'agent_config'],
    ['AGENTS.md', 'agent_config'],
    ['packages/api/AGENTS.md', 'agent_config'],
    ['CLAUDE.md', 'agent_config'],
    ['GEMINI.md', 'agent_config'],
    ['.gemini/settings.json', 'agent_config'],
    ['.codex/config.toml', 'agent_config'],
    ['.cursorrules', 'agent_config'],
    ['.github/copilot-instructions.md', 'agent_config'],
    ['.mcp.json', 'agent_config'],
  ])('%s → %s', (path, rule) => {
    expect(ruleOf(path)).toBe(rule);
  });

  it.each([
    'src/app.ts',
    'src/testing-utils-not-a-test.ts',
    'src/contest.py',
    'src/latest.go',
    'README.md',
    'docs/agents.md',
    'package.json',
    'Makefile',
    'package-lock.json',
    '.github/ISSUE_TEMPLATE/bug.md',
    'src/attestation.ts',
    'src/main/java/com/x/Testimony.java',
  ])('%s touches nothing without verify commands naming it', (path) => {
    expect(ruleOf(path)).toBeUndefined();
  });

  it.each<[string, string[], TouchRule | undefined]>([
    ['package.json', ['npm ci', 'npm test'], 'verify_script'],
    ['packages/web/package.json', ['pnpm -r test'], 'verify_script'],
    ['package.json', ['yarn lint && yarn test'], 'verify_script'],
    ['package.json', ['make check'], undefined],
    ['Makefile', ['make check'], 'verify_script'],
    ['build/rules.mk', ['make -j2 test'], 'verify_script'],
    ['Makefile', ['npm test'], undefined],
    ['scripts/ci.sh', ['./scripts/ci.sh --fast'], 'verify_script'],
    ['scripts/ci.sh', ['bash scripts/ci.sh'], 'verify_script'],
    ['tools/check.py', ['cd app && python ../tools/check.py'], undefined],
    ['tools/check.py', ['python tools/check.py'], 'verify_script'],
    ['tools/lint/rules.js', ['node tools/lint/'], 'verify_script'],
    ['justfile', ['just test'], 'verify_script'],
    ['composer.json', ['composer test'], 'verify_script'],
    ['src/app.ts', ['npm test', 'make check', './scripts/ci.sh'], undefined],
  ])('%s with verify %j → %s', (path, verify, rule) => {
    expect(ruleOf(path, verify)).toBe(rule);
  });

  it('lists every matching path, deletions included, in the order given, with why', () => {
    const matches = touchesTestsOrConfig(['src/a.ts', 'src/a.test.ts', '.github/workflows/ci.yml', 'src/b.ts', 'AGENTS.md'], []);
    expect(matches).toEqual([
      { path: 'src/a.test.ts', rule: 'test', why: 'a JavaScript/TypeScript test file' },
      { path: '.github/workflows/ci.yml', rule: 'ci', why: 'a GitHub Actions workflow' },
      { path: 'AGENTS.md', rule: 'agent_config', why: 'agent instructions' },
    ]);
    expect(touchesTestsOrConfig(['src/a.ts', 'src/b.ts'], ['npm test'])).toEqual([]);
    expect(touchesTestsOrConfig([], ['npm test'])).toEqual([]);
  });

  it('says it in one line for a pull request', () => {
    expect(describeTouches([])).toBe('touches no tests, CI or agent configuration');
    const m = touchesTestsOrConfig(['a.test.ts', 'b.test.ts', 'c.test.ts', '.github/workflows/x.yml', 'weird`name.test.js'], []);
    expect(describeTouches(m)).toBe('touches tests, CI configuration: `a.test.ts`, `b.test.ts`, `c.test.ts` and 2 more');
    expect(describeTouches(m.slice(4))).toBe("touches tests: `weird'name.test.js`");
  });
});
