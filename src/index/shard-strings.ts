/**
 * The strings section of a shard file being built: uuids, outputs, clip ids and texts, measured as
 * they are added and encoded once at the end (a Buffer per string, several per record, was a
 * large share of the build's allocations). Instructions repeat across a task's records: a text is
 * stored once per shard.
 */
export class ShardStrings {
  private readonly strings: string[] = [];
  private bytes = 0;
  private readonly texts = new Map<string, [number, number]>();

  /** Adds `s`; its [offset, length] in bytes. */
  add(s: string): [number, number] {
    const n = Buffer.byteLength(s, 'utf8');
    this.strings.push(s);
    this.bytes += n;
    return [this.bytes - n, n];
  }

  /** Adds `s` unless the same text was added by addText before; its [offset, length]. */
  addText(s: string): [number, number] {
    let at = this.texts.get(s);
    if (!at) this.texts.set(s, (at = this.add(s)));
    return at;
  }

  /** The section's bytes. */
  section(): Buffer {
    return utf8Section(this.strings, this.bytes);
  }
}

/** The strings' UTF-8 bytes back to back, each encoded on its own (as Buffer.from would: a lone surrogate is U+FFFD whatever follows it). */
export function utf8Section(strings: readonly string[], bytes: number): Buffer {
  const out = Buffer.allocUnsafe(bytes);
  let at = 0;
  for (const s of strings) at += out.write(s, at, 'utf8');
  if (at !== bytes) throw new Error(`strings section: wrote ${at} bytes of ${bytes}`);
  return out;
}
