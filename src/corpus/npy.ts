/**
 * Reading NumPy .npy codec-token files (format versions 1–3) without numpy. Only what docs/corpus.md
 * allows is accepted: little-endian int16/uint16/int32/int64, shape [frames] or [codebooks, frames],
 * C order. Anything else is a NpyFormatError whose message becomes a quarantine reason.
 */
export class NpyFormatError extends Error {}

export type NpyDtype = '<i2' | '<u2' | '<i4' | '<i8';
const ITEM_SIZE: Record<NpyDtype, number> = { '<i2': 2, '<u2': 2, '<i4': 4, '<i8': 8 };
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

export interface NpyArray {
  readonly dtype: NpyDtype;
  /** Codebooks × frames; a 1-D file is one codebook. */
  readonly codebooks: number;
  readonly frames: number;
  /** Codes in C order: codebook-major (q0 frames…, q1 frames…). */
  readonly codes: Int32Array;
}

function headerField(header: string, key: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*('[^']*'|"[^"]*"|True|False|\\([^)]*\\))`).exec(header);
  if (!m?.[1]) throw new NpyFormatError(`header has no '${key}'`);
  return m[1];
}

export function parseNpy(buf: Uint8Array): NpyArray {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (b.length < 10 || !b.subarray(0, 6).equals(MAGIC)) throw new NpyFormatError('not an .npy file (bad magic)');
  const major = b[6];
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = b.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (b.length < 12) throw new NpyFormatError('truncated header');
    headerLen = b.readUInt32LE(8);
    headerStart = 12;
  } else {
    throw new NpyFormatError(`unsupported .npy version ${String(major)}`);
  }
  const dataStart = headerStart + headerLen;
  if (dataStart > b.length) throw new NpyFormatError('truncated header');
  const header = b.toString('latin1', headerStart, dataStart);
  const descr = headerField(header, 'descr').slice(1, -1);
  if (!(descr in ITEM_SIZE)) {
    throw new NpyFormatError(`unsupported dtype '${descr}' (expected little-endian int16, uint16, int32 or int64)`);
  }
  const dtype = descr as NpyDtype;
  if (headerField(header, 'fortran_order') !== 'False')
    throw new NpyFormatError('fortran_order arrays are not supported');
  const shapeText = headerField(header, 'shape').slice(1, -1).trim();
  const dims =
    shapeText === ''
      ? []
      : shapeText
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== '');
  const shape = dims.map((d) => {
    if (!/^\d+$/.test(d)) throw new NpyFormatError(`bad shape entry '${d}'`);
    return Number(d);
  });
  let codebooks: number;
  let frames: number;
  if (shape.length === 1) {
    codebooks = 1;
    frames = shape[0] ?? 0;
  } else if (shape.length === 2) {
    codebooks = shape[0] ?? 0;
    frames = shape[1] ?? 0;
  } else {
    throw new NpyFormatError(`shape (${shapeText}) must be [frames] or [codebooks, frames]`);
  }
  if (codebooks === 0 || frames === 0) throw new NpyFormatError(`empty array of shape (${shapeText})`);
  const count = codebooks * frames;
  const size = ITEM_SIZE[dtype];
  const available = b.length - dataStart;
  if (available < count * size) {
    throw new NpyFormatError(`truncated data: ${available} bytes for ${count} ${dtype} values`);
  }
  return { dtype, codebooks, frames, codes: decodeCodes(b, dataStart, dtype, count, frames) };
}

/**
 * The codes as int32, one loop per dtype over a DataView: the indexer decodes every clip of the
 * corpus here, so no per-value dispatch and no BigInt per int64 value (that allocation alone was
 * most of the indexer's garbage collection). An int64 is its two 32-bit halves; it fits int32
 * exactly when the high half is the sign extension of the low one.
 */
function decodeCodes(b: Buffer, dataStart: number, dtype: NpyDtype, count: number, frames: number): Int32Array {
  const codes = new Int32Array(count);
  const v = new DataView(b.buffer, b.byteOffset + dataStart, count * ITEM_SIZE[dtype]);
  switch (dtype) {
    case '<i2':
      for (let i = 0; i < count; i++) codes[i] = v.getInt16(i * 2, true);
      break;
    case '<u2':
      for (let i = 0; i < count; i++) codes[i] = v.getUint16(i * 2, true);
      break;
    case '<i4':
      for (let i = 0; i < count; i++) codes[i] = v.getInt32(i * 4, true);
      break;
    case '<i8':
      for (let i = 0; i < count; i++) {
        const lo = v.getInt32(i * 8, true);
        const hi = v.getInt32(i * 8 + 4, true);
        // No codebook is 2^31 codes wide: say which value is wrong here, while it is still known
        // (an int32 cannot carry it on to the range check).
        if (hi !== lo >> 31)
          throw new NpyFormatError(
            `code ${v.getBigInt64(i * 8, true)} at codebook ${Math.floor(i / frames)}, frame ${i % frames} is outside any codebook (int64 value beyond 32 bits)`,
          );
        codes[i] = lo;
      }
      break;
  }
  return codes;
}

/**
 * Maps codes into the model vocabulary, frame-major (frame 0: q0..qQ-1, frame 1: …), as
 * `audioOffset + q * codebookSize + code`, for frames [from, to) (a record's time window).
 * Throws on a code outside [0, codebookSize).
 */
export function audioCodesToTokens(
  arr: NpyArray,
  audioOffset: number,
  codebookSize: number,
  out: Int32Array,
  at: number,
  from = 0,
  to = arr.frames,
): void {
  const { codebooks, frames, codes } = arr;
  for (let q = 0; q < codebooks; q++) {
    const base = audioOffset + q * codebookSize;
    const row = q * frames;
    for (let f = from; f < to; f++) {
      const code = codes[row + f] ?? -1;
      if (code < 0 || code >= codebookSize) {
        throw new NpyFormatError(`code ${code} at codebook ${q}, frame ${f} is outside [0, ${codebookSize})`);
      }
      out[at + (f - from) * codebooks + q] = base + code;
    }
  }
}
