/** A field split into text pieces and inline `<|SOA|>id<|EOA|>` audio references, in order. */
export type FieldPart =
  { readonly kind: 'text'; readonly text: string } | { readonly kind: 'audio'; readonly id: string };

const AUDIO_REF = /<\|SOA\|>(.*?)<\|EOA\|>/gs;

export function splitAudioRefs(field: string): FieldPart[] {
  const parts: FieldPart[] = [];
  let last = 0;
  for (const m of field.matchAll(AUDIO_REF)) {
    const at = m.index;
    if (at > last) parts.push({ kind: 'text', text: field.slice(last, at) });
    parts.push({ kind: 'audio', id: (m[1] ?? '').trim() });
    last = at + m[0].length;
  }
  if (last < field.length) parts.push({ kind: 'text', text: field.slice(last) });
  return parts;
}
