import { InvalidArgumentError } from '../errors.js';

/**
 * The three forms a release's `.scp` paths come in (docs/corpus.md), reduced to one: a path
 * relative to `audio_files/`, whose codes live at `audio_tokens/<that path>.npy`.
 *   speech/07_x/a.wav                    relative to audio_files/
 *   audio_files/speech/07_x/a.wav        relative to the corpus root
 *   /data/release/audio_files/speech/…   absolute, from the machine that produced the release
 *   s3://bucket/release/audio_files/…    a URL, from a release produced on object storage
 * An absolute path is only usable under an `--audio-root` prefix the user named; any other is
 * refused without being opened (the server never reads outside its corpus).
 */
export type ScpPath = { readonly ok: true; readonly rel: string } | { readonly ok: false; readonly detail: string };

const AUDIO_FILES = 'audio_files/';
// A URL (s3://bucket/release/audio_files/…, as a release written from object storage has) is as
// absolute as a path: it names a place outside the corpus unless an --audio-root maps it in.
const isAbsolute = (p: string): boolean =>
  p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p) || /^[A-Za-z][A-Za-z0-9+.-]+:\/\//.test(p);

/** `--audio-root` values as prefixes: absolute, without a trailing slash, longest first. */
export function normalizeAudioRoots(roots: readonly string[]): string[] {
  const out = roots.map((r) => {
    if (!isAbsolute(r))
      throw new InvalidArgumentError(
        '--audio-root',
        `"${r}" is not an absolute path or URL; give the prefix the .scp files' absolute paths start with`,
      );
    return r.replace(/[\\/]+$/, '') || '/';
  });
  return [...new Set(out)].sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
}

export function scpRelativePath(path: string, roots: readonly string[]): ScpPath {
  let p = path;
  if (isAbsolute(p)) {
    const root = roots.find((r) => r === '/' || p.startsWith(`${r}/`) || p.startsWith(`${r}\\`));
    if (root === undefined) {
      const hint =
        roots.length === 0
          ? 'index with --audio-root <prefix>'
          : `it is under none of --audio-root ${roots.join(', ')}`;
      return {
        ok: false,
        detail: `scp path ${path} is absolute (from the machine that produced the release); ${hint} to map it into the corpus; refused`,
      };
    }
    p = p.slice(root === '/' ? 1 : root.length + 1);
  }
  p = p.replace(/\\/g, '/');
  while (p.startsWith('./')) p = p.slice(2);
  if (p.startsWith(AUDIO_FILES)) p = p.slice(AUDIO_FILES.length);
  return { ok: true, rel: p };
}
