// Turns Cedar's UTF-8 byte offsets into the file:line:column that editors and people use.

export interface SourcePosition {
  line: number;
  column: number;
}

/**
 * Line and column (both 1-based) of a byte offset into `text`. Cedar is Rust and counts UTF-8
 * bytes; editors count characters, so a policy comment with "é" must not shift the column.
 */
export function positionAt(text: string, byteOffset: number): SourcePosition {
  const bytes = Buffer.from(text, 'utf8');
  const end = Math.max(0, Math.min(byteOffset, bytes.length));
  const before = bytes.subarray(0, end).toString('utf8');
  const lineStart = before.lastIndexOf('\n') + 1;
  let line = 1;
  for (let i = 0; i < lineStart; i++) if (before.charCodeAt(i) === 10) line++;
  // Code points, not UTF-16 units: an emoji in a comment is one column.
  const column = [...before.slice(lineStart)].length + 1;
  return { line, column };
}

/** Byte offset of a JavaScript string index, for mapping our own slices back to Cedar offsets. */
export function byteOffsetOf(text: string, charIndex: number): number {
  return Buffer.byteLength(text.slice(0, charIndex), 'utf8');
}
