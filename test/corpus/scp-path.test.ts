import { describe, expect, it } from 'vitest';
import { normalizeAudioRoots, scpRelativePath } from '../../src/corpus/scp-path.js';

/** `.scp` paths written on object storage: an s3:// URL is absolute, mapped in only under an --audio-root URL prefix. */
describe('scp paths that are URLs', () => {
  it('map under an --audio-root URL to the path relative to audio_files/', () => {
    const roots = normalizeAudioRoots(['s3://lab-data/audio-flan/audio_files/', '/datasets/Audio-FLAN-Dataset']);
    expect(roots).toContain('s3://lab-data/audio-flan/audio_files');
    expect(scpRelativePath('s3://lab-data/audio-flan/audio_files/speech/01_X/a.wav', roots)).toEqual({
      ok: true,
      rel: 'speech/01_X/a.wav',
    });
    expect(scpRelativePath('/datasets/Audio-FLAN-Dataset/audio_files/speech/01_X/a.wav', roots)).toEqual({
      ok: true,
      rel: 'speech/01_X/a.wav',
    });
  });

  it('are refused as absolute when no --audio-root covers them, naming the flag', () => {
    const r = scpRelativePath(
      's3://other-bucket/audio_files/speech/a.wav',
      normalizeAudioRoots(['s3://lab-data/audio-flan/audio_files']),
    );
    expect(r.ok).toBe(false);
    expect(!r.ok && r.detail).toMatch(
      /s3:\/\/other-bucket\/audio_files\/speech\/a\.wav is absolute .*none of --audio-root s3:\/\/lab-data\/audio-flan\/audio_files/,
    );
    expect(scpRelativePath('speech/a.wav', [])).toEqual({ ok: true, rel: 'speech/a.wav' });
  });
});
