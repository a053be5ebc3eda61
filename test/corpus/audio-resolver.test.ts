import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AudioResolver } from '../../src/corpus/audio-resolver.js';
import { splitAudioRefs } from '../../src/corpus/audio-refs.js';
import { encodeNpy } from '../../src/sample/npy-writer.js';

const base = mkdtempSync(join(tmpdir(), 'flanstream-resolver-'));
const root = join(base, 'corpus');
afterAll(() => rmSync(base, { recursive: true, force: true }));

function put(rel: string, data: string | Buffer): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), data);
}
const npy = (codes: number[], shape = [codes.length]): Buffer => encodeNpy(codes, shape, '<i2');

beforeAll(() => {
  put(
    'scp_files/speech/01_Foo.scp',
    [
      '01_Foo_a speech/01_Foo/a.wav',
      '01_Foo_tabs\tspeech/01_Foo/sub dir/b.flac', // a path with a space: everything after the first whitespace
      '  01_Foo_crlf   speech/01_Foo/c.mp3  \r',
      '01_Foo_noext speech/01_Foo/noext',
      '01_Foo_dots speech/01_Foo/v1.2/d.e.wav',
      '01_Foo_missing speech/01_Foo/missing.wav',
      '01_Foo_bad speech/01_Foo/bad.wav',
      '01_Foo_dotdot ../../outside/x.wav',
      '01_Foo_sneaky speech/../../../outside/x.wav',
      '01_Foo_meta ../metadata/y.wav',
      '01_Foo_abs /etc/passwd',
      '01_Foo_link speech/01_Foo/link.wav',
      '01_Foo_inlink speech/01_Foo/inlink.wav',
      '01_Foo_dir speech/01_Foo/adir.wav',
      '01_Foo_fifo speech/01_Foo/afifo.wav',
      '01_Foo_dirlink speech/01_Foo/dirlink/x.wav',
      '01_Foo_indirlink speech/01_Foo/indirlink/a.wav',
      'only-one-column',
      '',
    ].join('\n'),
  );
  put('scp_files/speech/01_FooBar.scp', '01_FooBar_a speech/01_FooBar/a.wav\n');
  put('scp_files/music/20_Jam.scp', '20_Jam_t1 music/20_Jam/t1.mp3\n');
  // Dataset names that prefix each other at an underscore, and one without an underscore.
  put('scp_files/speech/05_Lib.scp', '05_Lib_a speech/05_Lib/a.wav\n05_Lib_clean_z speech/05_Lib/z.wav\n');
  put('scp_files/speech/05_Lib_clean.scp', '05_Lib_clean_a speech/05_Lib_clean/a.wav\n');
  put('scp_files/speech/misc.scp', 'misc_a speech/misc/a.wav\n');
  put('audio_tokens/speech/05_Lib/a.npy', npy([51]));
  put('audio_tokens/speech/05_Lib/z.npy', npy([52]));
  put('audio_tokens/speech/05_Lib_clean/a.npy', npy([53]));
  put('audio_tokens/speech/misc/a.npy', npy([54]));
  put('audio_tokens/speech/01_Foo/a.npy', npy([1, 2, 3]));
  put('audio_tokens/speech/01_Foo/sub dir/b.npy', npy([4]));
  put('audio_tokens/speech/01_Foo/c.npy', npy([5, 6, 7, 8], [2, 2]));
  put('audio_tokens/speech/01_Foo/noext.npy', npy([9]));
  put('audio_tokens/speech/01_Foo/v1.2/d.e.npy', npy([10]));
  put('audio_tokens/speech/01_Foo/bad.npy', 'not an npy');
  put('audio_tokens/speech/01_Foo/inside.npy', npy([11]));
  put('audio_tokens/speech/01_FooBar/a.npy', npy([12]));
  put('audio_tokens/music/20_Jam/t1.npy', npy([13]));
  mkdirSync(join(root, 'audio_tokens/speech/01_Foo/adir.npy'));
  // A real FIFO: reading it the ordinary way blocks until a writer comes, which never happens.
  expect(spawnSync('mkfifo', [join(root, 'audio_tokens/speech/01_Foo/afifo.npy')]).status).toBe(0);
  // Valid token files outside audio_tokens/ and outside the corpus: if any were opened, the test would see its codes.
  put('metadata/y.npy', npy([666]));
  mkdirSync(join(base, 'outside'), { recursive: true });
  writeFileSync(join(base, 'outside', 'x.npy'), npy([666]));
  symlinkSync(join(base, 'outside', 'x.npy'), join(root, 'audio_tokens/speech/01_Foo/link.npy'));
  symlinkSync(join(root, 'audio_tokens/speech/01_Foo/inside.npy'), join(root, 'audio_tokens/speech/01_Foo/inlink.npy'));
  symlinkSync(join(base, 'outside'), join(root, 'audio_tokens/speech/01_Foo/dirlink'));
  symlinkSync(join(root, 'audio_tokens/speech/01_Foo'), join(root, 'audio_tokens/speech/01_Foo/indirlink'));
});

describe('AudioResolver', () => {
  const ok = (domain: string, id: string): number[] => {
    const r = new AudioResolver(root).resolve(domain, id);
    if (!r.ok) throw new Error(`${id}: ${r.reason} ${r.detail}`);
    return Array.from(r.npy.codes);
  };
  const fail = (domain: string, id: string): [string, string] => {
    const r = new AudioResolver(root).resolve(domain, id);
    if (r.ok) throw new Error(`${id} resolved to ${r.file}`);
    return [r.reason, r.detail];
  };

  it('resolves ids through the scp file of their dataset, replacing the extension by .npy', () => {
    const r = new AudioResolver(root).resolve('speech', '01_Foo_a');
    expect(r).toMatchObject({ ok: true, file: 'audio_tokens/speech/01_Foo/a.npy', scp: 'scp_files/speech/01_Foo.scp' });
    expect(ok('speech', '01_Foo_a')).toEqual([1, 2, 3]);
    expect(ok('speech', '01_Foo_noext')).toEqual([9]);
    expect(ok('speech', '01_Foo_dots')).toEqual([10]);
  });

  it('accepts tabs, padding, CRLF and paths with spaces in scp lines', () => {
    expect(ok('speech', '01_Foo_tabs')).toEqual([4]);
    expect(ok('speech', '01_Foo_crlf')).toEqual([5, 6, 7, 8]);
  });

  it('does not confuse datasets whose names share a prefix', () => {
    expect(ok('speech', '01_FooBar_a')).toEqual([12]);
    expect(fail('speech', '01_FooBar_tabs')[0]).toBe('audio_id_unresolved');
  });

  it('tries every dataset whose name prefixes the id, longest first', () => {
    expect(ok('speech', '05_Lib_clean_a')).toEqual([53]);
    // Listed only by the shorter name's scp: the longer name's miss falls through to it.
    expect(ok('speech', '05_Lib_clean_z')).toEqual([52]);
    expect(ok('speech', '05_Lib_a')).toEqual([51]);
    expect(ok('music', 'misc_a')).toEqual([54]);
    expect(fail('speech', '05_Li_a')[0]).toBe('audio_id_unresolved');
  });

  it('finds an id of another domain (clips shared across domains)', () => {
    expect(ok('speech', '20_Jam_t1')).toEqual([13]);
  });

  it.each([
    ['an id no scp lists', '01_Foo_zzz'],
    ['an id of an unknown dataset', '99_Nope_a'],
    ['an empty id', ''],
    ['a malformed scp line', 'only-one-column'],
  ])('reports %s as audio_id_unresolved', (_name, id) => {
    const [reason, detail] = fail('speech', id);
    expect(reason).toBe('audio_id_unresolved');
    expect(detail).toContain('no .scp');
  });

  it('reports a listed id without token file as npy_missing, naming the file', () => {
    expect(fail('speech', '01_Foo_missing')).toEqual([
      'npy_missing',
      expect.stringContaining('audio_tokens/speech/01_Foo/missing.npy'),
    ]);
  });

  it('reports a token file that is not a .npy file as npy_malformed', () => {
    const [reason, msg] = fail('speech', '01_Foo_bad');
    expect(reason).toBe('npy_malformed');
    expect(msg).toMatch(/bad magic/);
  });

  it.each([
    ['a directory', '01_Foo_dir', 'audio_tokens/speech/01_Foo/adir.npy: a directory, not a regular file'],
    ['a FIFO', '01_Foo_fifo', 'audio_tokens/speech/01_Foo/afifo.npy: a FIFO, not a regular file'],
  ])('reports a token file that is %s as not_regular_file, without reading it', (_name, id, detail) => {
    expect(fail('speech', id)).toEqual(['not_regular_file', expect.stringContaining(detail)]);
  });

  it.each([
    ['../ out of the corpus', '01_Foo_dotdot'],
    ['../ hidden after a directory', '01_Foo_sneaky'],
    ['../ into another corpus folder', '01_Foo_meta'],
    ['a symlink leaving the corpus', '01_Foo_link'],
    ['a directory symlink leaving the corpus', '01_Foo_dirlink'],
  ])('refuses %s as path_escape without reading it', (_name, id) => {
    const [reason, detail] = fail('speech', id);
    expect(reason).toBe('path_escape');
    expect(detail).toMatch(/refused/);
  });

  it('refuses an absolute path no --audio-root covers as absolute_path without reading it', () => {
    const [reason, detail] = fail('speech', '01_Foo_abs');
    expect(reason).toBe('absolute_path');
    expect(detail).toMatch(/is absolute.*--audio-root.*refused/);
  });

  it('follows file and directory symlinks that stay inside the corpus', () => {
    expect(ok('speech', '01_Foo_inlink')).toEqual([11]);
    expect(ok('speech', '01_Foo_indirlink')).toEqual([1, 2, 3]);
  });

  it('caches: one resolver returns the same parsed array for repeated ids', () => {
    const res = new AudioResolver(root);
    const a = res.resolve('speech', '01_Foo_a');
    const b = res.resolve('speech', '01_Foo_a');
    expect(a.ok && b.ok && a.npy === b.npy).toBe(true);
  });

  it('reports size and mtime of the token file for the incremental index', () => {
    utimesSync(join(root, 'audio_tokens/speech/01_Foo/a.npy'), 1_000, 1_000);
    const r = new AudioResolver(root).resolve('speech', '01_Foo_a');
    expect(r).toMatchObject({ ok: true, size: npy([1, 2, 3]).length, mtimeMs: 1_000_000 });
  });

  it('treats a missing scp_files directory as no scp at all', () => {
    expect(new AudioResolver(join(root, 'audio_tokens')).resolve('speech', '01_Foo_a')).toMatchObject({
      ok: false,
      reason: 'audio_id_unresolved',
    });
  });

  it('does not throw on an unreadable scp file', () => {
    mkdirSync(join(root, 'scp_files/audio/77_Dir.scp'), { recursive: true });
    expect(new AudioResolver(root).resolve('audio', '77_Dir_x')).toMatchObject({
      ok: false,
      reason: 'audio_id_unresolved',
      detail: expect.stringContaining('unreadable: scp_files/audio/77_Dir.scp (a directory, not a regular file'),
    });
    rmSync(join(root, 'scp_files/audio'), { recursive: true });
  });
});

describe('splitAudioRefs', () => {
  it('splits text and inline audio references in order', () => {
    expect(splitAudioRefs('audio: <|SOA|>01_Foo_a<|EOA|>\ntext: hi <|SOA|> 01_Foo_b <|EOA|>')).toEqual([
      { kind: 'text', text: 'audio: ' },
      { kind: 'audio', id: '01_Foo_a' },
      { kind: 'text', text: '\ntext: hi ' },
      { kind: 'audio', id: '01_Foo_b' },
    ]);
    expect(splitAudioRefs('<|SOA|>x<|EOA|><|SOA|>y<|EOA|>').map((p) => p.kind)).toEqual(['audio', 'audio']);
    expect(splitAudioRefs('')).toEqual([]);
    expect(splitAudioRefs('plain')).toEqual([{ kind: 'text', text: 'plain' }]);
  });
});
