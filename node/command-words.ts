import { z } from 'zod';

/* A custom agent command as the owner writes it in GAFFER_AGENT_COMMAND: JSON or shell-style words,
   split here without any shell ever running it. */

/** Splits a command line into words the way a POSIX shell would, without running one. */
export function splitShellWords(line: string): string[] | undefined {
  const words: string[] = [];
  let current = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (quote === "'") {
      if (ch === "'") quote = undefined;
      else current += ch;
    } else if (quote === '"') {
      if (ch === '"') quote = undefined;
      else if (ch === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) current += line[++i];
      else current += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === '\\' && i + 1 < line.length) {
      current += line[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(current);
      current = '';
      inWord = false;
    } else {
      current += ch;
      inWord = true;
    }
  }
  if (quote) return undefined;
  if (inWord) words.push(current);
  return words;
}

/** Parses a custom agent command: a JSON array of strings, or shell-style words. */
export function parseCommand(value: string): string[] | undefined {
  const trimmed = value.trim();
  if (trimmed.startsWith('[')) {
    const parsed = z.array(z.string()).min(1).safeParse(safeJson(trimmed));
    return parsed.success ? parsed.data : undefined;
  }
  const words = splitShellWords(trimmed);
  return words && words.length > 0 ? words : undefined;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
