/**
 * A Buffer's bytes as a view whose ArrayBuffer can be moved (transferred) to another thread. Why:
 * a build worker hands each batch's wire bytes to the server thread, and copying ~130 KB per batch
 * costs about as much as a tenth of building it. A batch's response is written around its tokens
 * in a buffer of its own (batch-builder.ts) or into one allocated for it, so its whole
 * ArrayBuffer moves, with the view's offset. A Buffer on a shared pool slab (a small response)
 * must not move (the slab holds other Buffers' bytes): it is copied first, with one memcpy.
 */
export function movable(b: Buffer): Uint8Array {
  const ab = b.buffer;
  // Pool slabs are exactly Buffer.poolSize bytes; a larger ArrayBuffer was allocated for one Buffer.
  const own =
    ab instanceof ArrayBuffer &&
    (ab.byteLength > Buffer.poolSize || (b.byteOffset === 0 && ab.byteLength === b.length));
  return own
    ? new Uint8Array(ab, b.byteOffset, b.length)
    : new Uint8Array(ab.slice(b.byteOffset, b.byteOffset + b.length));
}
