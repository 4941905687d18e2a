/**
 * What a reader sees of a server-rendered page: its text nodes and the attributes a browser shows
 * (placeholders, tooltips, accessible names, confirm dialogs, option-group names), each with the
 * element it sits in. A small tokenizer for the admin page's own output (Hono JSX: well-formed,
 * double-quoted attributes, escaped text), not a general HTML parser.
 */
export type Visible = { text: string; where: string; machine: boolean };

const VOID = new Set(['meta', 'link', 'input', 'br', 'img', 'hr', 'source', 'wbr']);
/** Elements whose content is not prose: skipped entirely. */
const HIDDEN = new Set(['script', 'style', 'template']);
/** Elements whose content is machine text (code, commands, logs, timestamps): marked, not skipped. */
const MACHINE = new Set(['code', 'pre', 'time', 'kbd', 'samp']);
/** Attributes a browser shows to the reader. */
const SHOWN_ATTRIBUTES = new Set(['placeholder', 'title', 'aria-label', 'alt', 'data-confirm', 'label']);

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ' };
function decode(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, e: string) => {
    if (e[0] === '#') return String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return ENTITIES[e.toLowerCase()] ?? whole;
  });
}

/** Every visible text of a page, in document order. */
export function visibleTexts(html: string): Visible[] {
  const out: Visible[] = [];
  const stack: string[] = [];
  const token = /<!--[\s\S]*?-->|<!doctype[^>]*>|<(\/?)([a-zA-Z][a-zA-Z0-9-]*)((?:\s+[^\s=>/]+(?:="[^"]*")?)*)\s*(\/?)>|([^<]+)/gi;
  for (let m = token.exec(html); m; m = token.exec(html)) {
    const [, closing, rawTag, attrs, selfClosing, text] = m;
    const where = stack.join('>');
    const hidden = stack.some((t) => HIDDEN.has(t));
    const machine = stack.some((t) => MACHINE.has(t));
    if (text !== undefined) {
      const value = decode(text).replace(/\s+/g, ' ').trim();
      if (value && !hidden) out.push({ text: value, where, machine });
      continue;
    }
    if (!rawTag) continue;
    const tag = rawTag.toLowerCase();
    if (closing) {
      const at = stack.lastIndexOf(tag);
      if (at >= 0) stack.length = at;
      continue;
    }
    const attributes = new Map<string, string>();
    for (const a of (attrs ?? '').matchAll(/([^\s=>/]+)(?:="([^"]*)")?/g)) attributes.set(a[1]!.toLowerCase(), decode(a[2] ?? ''));
    const inputType = attributes.get('type');
    for (const [name, value] of attributes) {
      const shown =
        SHOWN_ATTRIBUTES.has(name) || (name === 'value' && tag === 'input' && (inputType === 'submit' || inputType === 'button'));
      if (shown && value.trim() && !hidden) out.push({ text: value.trim(), where: `${where}>${tag}[${name}]`, machine });
    }
    if (!VOID.has(tag) && !selfClosing) stack.push(tag);
  }
  return out;
}

/** Han ideographs, CJK punctuation and full-width forms: text that is not English. */
const CJK = /[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]/;

/**
 * Words that are the same in both languages, each for a reason: proper nouns (Gaffer, GitHub,
 * bubblewrap, the agent CLIs), the seed's own Chinese vocabulary (it writes "Issue", "Node",
 * "PAT", "PR" and "webhook" untranslated), units and codes (UTC, URL, P90), and the names of
 * the two languages on the switcher, each written in itself.
 */
export const SAME_IN_BOTH = new Set([
  'Gaffer', 'GitHub', 'App', 'Issue', 'Issues', 'issue', 'PAT', 'PR', 'Webhook', 'webhook', 'CLI', 'UTC', 'URL',
  'P90', 'API', 'bubblewrap', 'apt-get', 'install', 'claude', 'codex', 'aider', 'gemini', 'smee-client', 'README',
  'localhost', 'English', 'owner/name', 'file://', 'agent:*', 'AI',
  // Example values in placeholders: a repository, an organization login.
  'octo/hello', 'my-org',
]);
const LANGUAGE_NAMES = new Set(['中文', 'English']);

/**
 * The pieces of a page that are not in `lang`: in Chinese, English words left after removing the
 * test's own data, environment keys and {@link SAME_IN_BOTH}; in English, any CJK text. Machine
 * text (code, pre, time) and the page's data are the reader's own, not the page's words.
 */
export function untranslated(html: string, lang: 'zh' | 'en', data: readonly string[]): string[] {
  const longestFirst = [...data].filter((d) => d.length > 0).sort((a, b) => b.length - a.length);
  const found: string[] = [];
  for (const v of visibleTexts(html)) {
    if (v.machine || LANGUAGE_NAMES.has(v.text)) continue;
    let rest = v.text;
    for (const d of longestFirst) rest = rest.split(d).join(' ');
    if (lang === 'en') {
      if (CJK.test(rest)) found.push(`${v.where}: ${v.text}`);
      continue;
    }
    // Environment keys (CREDENTIAL_KEY, APP_ID=…), URLs and file names are code, in either language.
    rest = rest
      .replace(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+(?:=\S*)?/g, ' ')
      .replace(/\bhttps?:\/\/\S+/g, ' ')
      .replace(/[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g, ' ')
      .replace(/(?<![\w-])--[a-z][\w-]*/g, ' ')
      .replace(/\b[\w-]+\.(?:yml|json|md)\b/g, ' ');
    for (const phrase of SAME_IN_BOTH) if (/[^\w-]/.test(phrase)) rest = rest.split(phrase).join(' ');
    const words = rest.split(/[\s,.;:!?()（）\[\]{}"'“”‘’…·—–|/→←✓•]+|(?<=[\u3000-\u9fff\uff00-\uffef])|(?=[\u3000-\u9fff\uff00-\uffef])/);
    const english = words.filter((w) => /[A-Za-z]{2,}/.test(w) && !SAME_IN_BOTH.has(w) && !CJK.test(w));
    if (english.length) found.push(`${v.where}: ${v.text}  [${english.join(' ')}]`);
  }
  return found;
}
