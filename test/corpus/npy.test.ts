import { describe, expect, it } from 'vitest';
import { NpyFormatError, audioCodesToTokens, parseNpy, type NpyDtype } from '../../src/corpus/npy.js';
import { encodeNpy } from '../../src/sample/npy-writer.js';

const DTYPES: readonly NpyDtype[] = ['<i2', '<u2', '<i4', '<i8'];
const SHAPES: readonly (readonly number[])[] = [[1], [75], [1, 40], [8, 75], [3, 1]];
const LIMITS: Record<NpyDtype, [number, number]> = {
  '<i2': [-0x8000, 0x7fff],
  '<u2': [0, 0xffff],
  '<i4': [-0x80000000, 0x7fffffff],
  '<i8': [-0x80000000, 0x7fffffff],
};

/** A .npy file as numpy writes it, in any format version, with a hand-written header. */
function rawNpy(header: string, data: Buffer, version = 1): Buffer {
  const lenBytes = version === 1 ? 2 : 4;
  const pad = (64 - ((8 + lenBytes + header.length + 1) % 64)) % 64;
  const h = Buffer.from(header + ' '.repeat(pad) + '\n', 'latin1');
  const pre = Buffer.alloc(8 + lenBytes);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(pre);
  if (version === 1) pre.writeUInt16LE(h.length, 8);
  else pre.writeUInt32LE(h.length, 8);
  return Buffer.concat([pre, h, data]);
}

const header = (descr: string, shape: string, fortran = 'False'): string =>
  `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

/** Deterministic codes spanning the dtype's range, extremes included. */
function codesFor(dtype: NpyDtype, n: number): number[] {
  const [lo, hi] = LIMITS[dtype];
  return Array.from({ length: n }, (_, i) => (i === 0 ? lo : i === 1 ? hi : (i * 7919) % 1024));
}

describe('parseNpy: every dtype × shape', () => {
  for (const dtype of DTYPES) {
    for (const shape of SHAPES) {
      it(`${dtype} ${JSON.stringify(shape)}`, () => {
        const n = shape.reduce((a, b) => a * b, 1);
        const codes = codesFor(dtype, n);
        const arr = parseNpy(encodeNpy(codes, shape, dtype));
        expect(arr.dtype).toBe(dtype);
        expect(arr.codebooks).toBe(shape.length === 1 ? 1 : shape[0]);
        expect(arr.frames).toBe(shape[shape.length - 1]);
        expect(Array.from(arr.codes)).toEqual(codes);
      });
    }
  }

  it.each([1, 2, 3])('reads format version %i headers', (version) => {
    const data = Buffer.alloc(6 * 2);
    [5, 6, 7, 8, 9, 10].forEach((v, i) => data.writeInt16LE(v, i * 2));
    const arr = parseNpy(rawNpy(header('<i2', '(2, 3)'), data, version));
    expect([arr.codebooks, arr.frames, Array.from(arr.codes)]).toEqual([2, 3, [5, 6, 7, 8, 9, 10]]);
  });

  it('accepts double quotes, other key order and a header without trailing comma', () => {
    const data = Buffer.alloc(8);
    data.writeInt32LE(3, 0);
    data.writeInt32LE(4, 4);
    const arr = parseNpy(rawNpy(`{"shape": (2,), "fortran_order": False, "descr": "<i4"}`, data));
    expect(Array.from(arr.codes)).toEqual([3, 4]);
  });

  it('reads from a Uint8Array view at a non-zero offset', () => {
    const file = encodeNpy([1, 2, 3], [3], '<i2');
    const big = new Uint8Array(file.length + 5);
    big.set(file, 5);
    expect(Array.from(parseNpy(big.subarray(5)).codes)).toEqual([1, 2, 3]);
  });

  it('refuses int64 values outside int32 naming the value and its place, never wrapping them', () => {
    const data = Buffer.alloc(32);
    data.writeBigInt64LE(7n, 0);
    data.writeBigInt64LE(7n, 8);
    data.writeBigInt64LE(7n, 16);
    data.writeBigInt64LE(2n ** 40n, 24);
    expect(() => parseNpy(rawNpy(header('<i8', '(2, 2)'), data))).toThrow(
      /code 1099511627776 at codebook 1, frame 1 is outside/,
    );
    data.writeBigInt64LE(-(2n ** 32n), 24);
    expect(() => parseNpy(rawNpy(header('<i8', '(4,)'), data))).toThrow(/code -4294967296 at codebook 0, frame 3/);
    data.writeBigInt64LE(0x7fffffffn, 24);
    const arr = parseNpy(rawNpy(header('<i8', '(4,)'), data));
    expect(arr.codes[3]).toBe(0x7fffffff);
    expect(() => audioCodesToTokens(arr, 1000, 1024, new Int32Array(4), 0)).toThrow(
      /code 2147483647 at codebook 0, frame 3/,
    );
  });
});

describe('parseNpy: malformed files are NpyFormatError with a reason', () => {
  const ok = encodeNpy([1, 2, 3, 4], [2, 2], '<i2');
  const cases: [string, Buffer, RegExp][] = [
    ['empty file', Buffer.alloc(0), /bad magic/],
    ['bad magic', Buffer.concat([Buffer.from('NOTNPY'), ok.subarray(6)]), /bad magic/],
    ['a text file', Buffer.from('audio_id path/to.wav\n'), /bad magic/],
    ['magic only', ok.subarray(0, 8), /bad magic|truncated/],
    ['unsupported version 4', Buffer.concat([ok.subarray(0, 6), Buffer.from([4, 0]), ok.subarray(8)]), /version 4/],
    ['truncated header', ok.subarray(0, 40), /truncated header/],
    [
      'v2 truncated before header length',
      rawNpy(header('<i2', '(1,)'), Buffer.alloc(2), 2).subarray(0, 11),
      /truncated header|bad magic/,
    ],
    ['float dtype', rawNpy(header('<f4', '(2,)'), Buffer.alloc(8)), /unsupported dtype '<f4'/],
    ['big-endian dtype', rawNpy(header('>i2', '(2,)'), Buffer.alloc(4)), /unsupported dtype '>i2'/],
    ['uint8 dtype', rawNpy(header('|u1', '(2,)'), Buffer.alloc(2)), /unsupported dtype/],
    ['uint32 dtype', rawNpy(header('<u4', '(2,)'), Buffer.alloc(8)), /unsupported dtype/],
    [
      'structured dtype',
      rawNpy(`{'descr': [('a', '<i2')], 'fortran_order': False, 'shape': (2,), }`, Buffer.alloc(4)),
      /descr/,
    ],
    ['no descr', rawNpy(`{'fortran_order': False, 'shape': (2,), }`, Buffer.alloc(4)), /no 'descr'/],
    ['no shape', rawNpy(`{'descr': '<i2', 'fortran_order': False, }`, Buffer.alloc(4)), /no 'shape'/],
    ['no fortran_order', rawNpy(`{'descr': '<i2', 'shape': (2,), }`, Buffer.alloc(4)), /no 'fortran_order'/],
    ['fortran order', rawNpy(header('<i2', '(2, 2)', 'True'), Buffer.alloc(8)), /fortran_order/],
    ['3-D shape', rawNpy(header('<i2', '(2, 2, 2)'), Buffer.alloc(16)), /must be \[frames\]/],
    ['scalar shape', rawNpy(header('<i2', '()'), Buffer.alloc(2)), /must be \[frames\]/],
    ['zero frames', rawNpy(header('<i2', '(8, 0)'), Buffer.alloc(0)), /empty array/],
    ['zero codebooks', rawNpy(header('<i2', '(0, 5)'), Buffer.alloc(0)), /empty array/],
    ['negative dimension', rawNpy(header('<i2', '(-2,)'), Buffer.alloc(4)), /bad shape entry/],
    ['symbolic dimension', rawNpy(header('<i2', '(n,)'), Buffer.alloc(4)), /bad shape entry/],
    ['truncated data', ok.subarray(0, ok.length - 1), /truncated data/],
    ['data missing entirely', rawNpy(header('<i8', '(8, 75)'), Buffer.alloc(0)), /truncated data: 0 bytes for 600/],
    [
      'header length past the end',
      (() => {
        const b = Buffer.from(ok);
        b.writeUInt16LE(0xfff0, 8);
        return b;
      })(),
      /truncated header/,
    ],
  ];
  it.each(cases)('%s', (_name, buf, reason) => {
    let err: unknown;
    try {
      parseNpy(buf);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NpyFormatError);
    expect((err as Error).message).toMatch(reason);
  });

  it('ignores bytes after the data (numpy pads nothing, but appended junk is harmless)', () => {
    expect(Array.from(parseNpy(Buffer.concat([ok, Buffer.from([9, 9])])).codes)).toEqual([1, 2, 3, 4]);
  });
});

describe('audioCodesToTokens', () => {
  it('flattens frame-major into audio_offset + q * codebook_size + code', () => {
    // codebooks × frames = 3 × 4, C order: q0 f0..f3, q1 f0..f3, q2 f0..f3
    const codes = [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23];
    const arr = parseNpy(encodeNpy(codes, [3, 4], '<u2'));
    const out = new Int32Array(14).fill(-7);
    audioCodesToTokens(arr, 5000, 100, out, 1);
    const expected = [];
    for (let f = 0; f < 4; f++) for (let q = 0; q < 3; q++) expected.push(5000 + q * 100 + (codes[q * 4 + f] ?? NaN));
    expect(Array.from(out)).toEqual([-7, ...expected, -7]);
  });

  it('a 1-D file is one codebook', () => {
    const arr = parseNpy(encodeNpy([4, 0, 1023], [3], '<i4'));
    const out = new Int32Array(3);
    audioCodesToTokens(arr, 151671, 1024, out, 0);
    expect(Array.from(out)).toEqual([151675, 151671, 152694]);
  });

  it.each([
    ['code = codebook size', [0, 1024], /code 1024 at codebook 0, frame 1/],
    ['negative code', [3, -1], /code -1/],
  ])('rejects %s', (_name, codes, reason) => {
    const arr = parseNpy(encodeNpy(codes, [codes.length], '<i2'));
    expect(() => audioCodesToTokens(arr, 0, 1024, new Int32Array(2), 0)).toThrow(reason);
  });
});
