/**
 * Writing NumPy .npy files (format version 1.0) for integer codec tokens, as numpy.save would:
 * magic, version, little-endian header length, a Python dict literal padded with spaces to a
 * 64-byte boundary and ending in '\n', then the raw little-endian data in C order.
 */

export type NpyWriteDtype = '<i2' | '<u2' | '<i4' | '<i8';

const ITEM_SIZE: Record<NpyWriteDtype, number> = { '<i2': 2, '<u2': 2, '<i4': 4, '<i8': 8 };

const RANGE: Record<NpyWriteDtype, readonly [number, number]> = {
  '<i2': [-0x8000, 0x7fff],
  '<u2': [0, 0xffff],
  '<i4': [-0x80000000, 0x7fffffff],
  '<i8': [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** The header dict exactly as numpy formats it, e.g. `{'descr': '<i2', 'fortran_order': False, 'shape': (8, 75), }`. */
function headerDict(dtype: NpyWriteDtype, shape: readonly number[]): string {
  const dims = shape.length === 1 ? `(${String(shape[0])},)` : `(${shape.join(', ')})`;
  return `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${dims}, }`;
}

/**
 * Encode `data` (C order, length = product of `shape`) as a version-1.0 .npy file.
 * Throws if the length does not match the shape or a value does not fit the dtype.
 */
export function encodeNpy(data: ArrayLike<number>, shape: readonly number[], dtype: NpyWriteDtype): Buffer {
  if (shape.length === 0) throw new Error('encodeNpy: shape must have at least one dimension');
  let count = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`encodeNpy: bad dimension ${String(d)}`);
    count *= d;
  }
  if (data.length !== count) {
    throw new Error(`encodeNpy: ${String(data.length)} values for shape (${shape.join(', ')})`);
  }
  const dict = headerDict(dtype, shape);
  // 6 magic + 2 version + 2 length bytes; header (dict + padding + '\n') ends on a 64-byte boundary.
  const unpadded = 10 + dict.length + 1;
  const padding = (64 - (unpadded % 64)) % 64;
  const headerLen = dict.length + padding + 1;
  const size = ITEM_SIZE[dtype];
  const out = Buffer.alloc(10 + headerLen + count * size);
  out.writeUInt8(0x93, 0);
  out.write('NUMPY', 1, 'latin1');
  out.writeUInt8(1, 6);
  out.writeUInt8(0, 7);
  out.writeUInt16LE(headerLen, 8);
  out.write(dict + ' '.repeat(padding) + '\n', 10, 'latin1');
  const [lo, hi] = RANGE[dtype];
  for (let i = 0; i < count; i++) {
    const v = data[i] as number;
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new Error(`encodeNpy: value ${String(v)} at ${String(i)} does not fit ${dtype}`);
    }
  }
  const view = new DataView(out.buffer, out.byteOffset + 10 + headerLen, count * size);
  switch (dtype) {
    case '<i2':
      for (let i = 0; i < count; i++) view.setInt16(i * 2, data[i] as number, true);
      break;
    case '<u2':
      for (let i = 0; i < count; i++) view.setUint16(i * 2, data[i] as number, true);
      break;
    case '<i4':
      for (let i = 0; i < count; i++) view.setInt32(i * 4, data[i] as number, true);
      break;
    case '<i8':
      for (let i = 0; i < count; i++) {
        const v = data[i] as number;
        view.setUint32(i * 8, v >>> 0, true);
        view.setInt32(i * 8 + 4, Math.floor(v / 0x100000000), true);
      }
      break;
  }
  return out;
}
