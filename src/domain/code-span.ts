/**
 * Text shown literally, as a Markdown code span: no link, image, emphasis, HTML or mention inside
 * it takes effect. Backticks and line breaks, which could end the span, are replaced first.
 */
export function codeSpan(text: string): string {
  const flat = text.replace(/[\r\n]+/g, ' ').replace(/`/g, "'").trim();
  return `\`${flat === '' ? ' ' : flat}\``;
}
