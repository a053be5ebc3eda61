/**
 * The JSON text of one top-level field of a JSON object document, found by scanning instead of
 * parsing the whole document. A tokenizer.json is ~10 MB, nearly all of it vocabulary and merges;
 * reading its `added_tokens` (the first few KB) with JSON.parse of the whole file cost every
 * process that loads a tokenizer (each index part, each worker, the merge, the server) about a
 * fifth of a CPU-second. The scan honours strings and escapes and nesting, and stops at the field.
 * Returns undefined when the document has no such top-level key. The document must be valid JSON
 * (the caller has parsed it natively already); the returned text is for JSON.parse.
 */
export function topLevelField(json: string, key: string): string | undefined {
  const quoted = JSON.stringify(key);
  let depth = 0;
  let i = 0;
  const n = json.length;
  while (i < n) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(json, i);
      if (depth === 1 && json.startsWith(quoted, i) && end === i + quoted.length) {
        let j = skipSpace(json, end);
        if (json.charCodeAt(j) === 0x3a /* : */) {
          j = skipSpace(json, j + 1);
          return json.slice(j, valueEnd(json, j));
        }
      }
      i = end;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) depth++;
    else if (c === 0x7d /* } */ || c === 0x5d /* ] */) depth--;
    i++;
  }
  return undefined;
}

/** Index just past the string starting at the quote at `i`. */
function stringEnd(s: string, i: number): number {
  let j = i + 1;
  for (;;) {
    const q = s.indexOf('"', j);
    if (q < 0) return s.length;
    let back = 0;
    while (s.charCodeAt(q - 1 - back) === 0x5c /* \ */) back++;
    if (back % 2 === 0) return q + 1;
    j = q + 1;
  }
}

function skipSpace(s: string, i: number): number {
  while (i < s.length && /\s/.test(s[i]!)) i++;
  return i;
}

/** Index just past the value starting at `i` (an object, array, string or scalar). */
function valueEnd(s: string, i: number): number {
  let depth = 0;
  let j = i;
  while (j < s.length) {
    const c = s.charCodeAt(j);
    if (c === 0x22) {
      j = stringEnd(s, j);
      if (depth === 0) return j;
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) {
      if (depth === 0) return j; // the end of the enclosing object: a scalar value ends here
      if (--depth === 0) return j + 1;
    } else if (c === 0x2c /* , */ && depth === 0) return j;
    j++;
  }
  return j;
}
