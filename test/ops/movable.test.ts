import { describe, expect, it } from 'vitest';
import { movable } from '../../src/server/movable.js';

/** The bytes a build worker transfers to the server thread (src/server/movable.ts). */
describe('movable', () => {
  it('a response written around its tokens (a view into a buffer of its own) moves without a copy, offset kept', () => {
    const ab = new ArrayBuffer(140_000);
    const b = Buffer.from(ab, 64, 131_000);
    b.fill(7);
    const v = movable(b);
    expect(v.buffer).toBe(ab);
    expect([v.byteOffset, v.byteLength]).toEqual([64, 131_000]);
    const moved = structuredClone(v, { transfer: [v.buffer as ArrayBuffer] });
    expect(Buffer.from(moved.buffer, moved.byteOffset, moved.byteLength).equals(Buffer.alloc(131_000, 7))).toBe(true);
  });

  it('a small Buffer on the shared pool slab is copied, and moving the copy leaves the slab and its neighbours intact', () => {
    const a = Buffer.from('neighbour on the slab');
    const b = Buffer.from('a small response');
    expect(a.buffer).toBe(b.buffer); // both pooled
    const v = movable(b);
    expect(v.buffer).not.toBe(b.buffer);
    structuredClone(v, { transfer: [v.buffer as ArrayBuffer] });
    expect(a.toString()).toBe('neighbour on the slab');
    expect(b.toString()).toBe('a small response');
  });

  it('a Buffer that is its whole ArrayBuffer moves as is', () => {
    const b = Buffer.allocUnsafe(50_000).fill(3);
    expect(movable(b).buffer).toBe(b.buffer);
  });
});
