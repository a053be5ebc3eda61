/**
 * A record's time window (`audio_start` / `audio_end`, seconds, both optional; docs/corpus.md)
 * as a frame range of its clip. Codec frames carry no timestamps, so this needs the codec's
 * frame rate. A window that is reversed, negative or reaches past the clip is the record's fault:
 * it is quarantined with the numbers, never silently clamped into different audio.
 */
export type FrameWindow =
  { readonly ok: true; readonly from: number; readonly to: number } | { readonly ok: false; readonly detail: string };

/** Codec frame counts are floor(samples / hop): a window may end up to one frame past the last. */
const SLACK_FRAMES = 1;
const EPS = 1e-6;

export function frameWindow(
  frames: number,
  start: number | null | undefined,
  end: number | null | undefined,
  frameRate: number,
): FrameWindow {
  if (start == null && end == null) return { ok: true, from: 0, to: frames };
  const given = `audio_start=${start ?? '(none)'} audio_end=${end ?? '(none)'}`;
  if (!(frameRate > 0)) {
    return {
      ok: false,
      detail: `${given} needs the codec frame rate: add "frame_rate" to audio_tokens/codec.json or index with --frame-rate HZ`,
    };
  }
  const s = start ?? 0;
  const e = end ?? frames / frameRate;
  const seconds = (frames / frameRate).toFixed(3);
  if (s < 0) return { ok: false, detail: `${given}: the window starts before the clip` };
  if (e <= s) return { ok: false, detail: `${given}: the window is reversed or empty` };
  if (e * frameRate > frames + SLACK_FRAMES + EPS || s * frameRate >= frames) {
    return {
      ok: false,
      detail: `${given}: the window lies outside the clip (${frames} frames = ${seconds} s at ${frameRate} Hz)`,
    };
  }
  const from = Math.floor(s * frameRate + EPS);
  const to = Math.min(frames, Math.ceil(e * frameRate - EPS));
  if (to <= from) return { ok: false, detail: `${given}: the window holds no whole frame at ${frameRate} Hz` };
  return { ok: true, from, to };
}
