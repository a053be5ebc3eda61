/** Record templates for the 28 music tasks of the sample corpus. */
import { attr, clipRng, clipSeconds, transcript } from './sample-datasets.js';
import { audioIn, audioOut, extra, phrase, ref, type Ctx, type TaskTemplate } from './sample-task-kit.js';
import {
  ARTISTS,
  CHORDS,
  GENRES,
  KEYS,
  MIX_INSTRUMENTS,
  MOODS,
  NOTE_NAMES,
  NSYNTH_FAMILIES,
  PLAY_TECHNIQUES,
  SCALES,
  STEMS,
  TAGS,
  TEMPO_WORDS,
  VOCAL_TECHNIQUES,
} from './sample-labels-music.js';
import { pickDistinct, secs } from './sample-text.js';
import type { Clip } from './sample-datasets.js';

const M = (t: Omit<TaskTemplate, 'domain'>): TaskTemplate => ({ domain: 'music', ...t });
const bpm = (c: Clip): number =>
  60 +
  attr(
    c,
    'bpm',
    Array.from({ length: 121 }, (_, i) => i),
  );
const midiName = (m: number): string => `${NOTE_NAMES[m % 12] ?? 'C'}${String(Math.floor(m / 12) - 1)}`;
const musicCaption = (c: Clip): string => {
  const [i1, i2] = pickDistinct(clipRng(c, 'caption-instr'), MIX_INSTRUMENTS, 2);
  const tempo = bpm(c) < 90 ? 'slow' : bpm(c) < 130 ? 'moderate' : 'fast';
  return `A ${attr(c, 'mood', MOODS)} ${attr(c, 'genre', GENRES)} piece featuring ${i1 ?? 'piano'} and ${i2 ?? 'drums'} at a ${tempo} tempo.`;
};
const chords = (c: Clip): string[] => {
  const r = clipRng(c, 'chords');
  return Array.from({ length: 3 + r.int(4) }, () => r.pick(CHORDS));
};
const beats = (c: Clip): number[] => {
  const period = 60 / bpm(c);
  const out: number[] = [];
  for (let t = (attr(c, 'phase', [0, 1, 2, 3, 4]) / 10) * period; t < clipSeconds(c); t += period) out.push(t);
  return out;
};
const pair = (c: Ctx): string => `audio_sample1: ${ref(c.p)}\naudio_sample2: ${ref(extra(c, 0))}`;
const compare = (c: Ctx, name: string, list: readonly string[]): string =>
  attr(c.p, name, list) === attr(extra(c, 0), name, list) ? 'Yes' : 'No';

export const MUSIC_TEMPLATES: readonly TaskTemplate[] = [
  M({
    minor: 'Key Detection',
    primary: 'in',
    instr: ['What is the key of this music?', 'Detect the musical key of the track.'],
    make: (c) => ({ input: audioIn(c), output: phrase(c, ['{}', 'The key is {}.'], attr(c.p, 'key', KEYS)) }),
  }),
  M({
    minor: 'Scale Recognition',
    primary: 'in',
    instr: ['Which scale is used in this excerpt?', 'Recognize the musical scale.'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'scale', SCALES) }),
  }),
  M({
    minor: 'Music Tagging',
    primary: 'in',
    instr: ['Give descriptive tags for this music.', 'Tag the track with genre, mood and instrument labels.'],
    make: (c) => ({
      input: audioIn(c),
      output: pickDistinct(clipRng(c.p, 'tags'), TAGS, 3 + clipRng(c.p, 'ntags').int(3)).join(', '),
    }),
  }),
  M({
    minor: 'Genre Classification',
    primary: 'in',
    instr: ['What is the genre of this music?', 'Classify the music genre.'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'genre', GENRES) }),
  }),
  M({
    minor: 'Emotion Classification',
    primary: 'in',
    instr: ['What mood does this music convey?', 'Classify the emotion of the track.'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'mood', MOODS) }),
  }),
  M({
    minor: 'Pitch Classification',
    primary: 'in',
    instr: ['What is the MIDI pitch of this note?', 'Identify the pitch of the played note.'],
    make: (c) => {
      const m = attr(
        c.p,
        'midi',
        Array.from({ length: 88 }, (_, i) => i + 21),
      );
      return { input: audioIn(c), output: `${String(m)} (${midiName(m)})` };
    },
  }),
  M({
    minor: 'Instrument Classification',
    primary: 'in',
    instr: ['Which instrument family produced this note?', 'Classify the instrument.'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'family', NSYNTH_FAMILIES) }),
  }),
  M({
    minor: 'Vocal Technique Classification',
    primary: 'in',
    instr: ['Which singing technique is used?', 'Classify the vocal technique in this recording.'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'vtech', VOCAL_TECHNIQUES) }),
  }),
  M({
    minor: 'Instrumental Technique Classification',
    primary: 'in',
    instr: ['Which playing technique does the performer use?', 'Classify the instrumental playing technique.'],
    zh: ['请判断演奏者使用了哪种演奏技巧。'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'ptech', PLAY_TECHNIQUES) }),
  }),
  M({
    minor: 'Artist Identification',
    primary: 'in',
    instr: ['Who is the artist of this track?', 'Identify the performing artist.'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'artist', ARTISTS) }),
  }),
  M({
    minor: 'Beat Tracking',
    primary: 'in',
    instr: ['Give the beat positions in seconds.', 'Track the beats of this music excerpt.'],
    make: (c) => ({ input: audioIn(c), output: beats(c.p).map(secs).join(', '), other: { bpm: bpm(c.p) } }),
  }),
  M({
    minor: 'Chord Estimation',
    primary: 'in',
    instr: ['Estimate the chords with their time spans.', 'Transcribe the chord sequence with timestamps.'],
    make: (c) => {
      const seq = chords(c.p);
      const step = clipSeconds(c.p) / seq.length;
      return {
        input: audioIn(c),
        output: seq.map((ch, i) => `${secs(i * step)}-${secs((i + 1) * step)}: ${ch}`).join('\n'),
      };
    },
  }),
  M({
    minor: 'Progression Extraction',
    primary: 'in',
    instr: ['What chord progression is played?', 'Extract the chord progression.'],
    make: (c) => ({ input: audioIn(c), output: chords(c.p).join(' - ') }),
  }),
  M({
    minor: 'Beat-level Instrument Recognition',
    primary: 'in',
    instr: ['Which instruments are playing at the given beat?'],
    make: (c) => {
      const beat = 1 + c.rng.int(4);
      const inst = pickDistinct(clipRng(c.p, `beat${String(beat)}`), MIX_INSTRUMENTS, 1 + c.rng.int(3));
      return { input: `${audioIn(c)}\ntext: beat ${String(beat)}`, output: inst.join(', ') };
    },
  }),
  M({
    minor: 'Beat-level Pitch Estimation',
    primary: 'in',
    instr: ['What is the pitch of the melody at the given beat?'],
    zh: ['请估计指定拍上旋律的音高。'],
    make: (c) => {
      const beat = 1 + c.rng.int(4);
      const m = 48 + clipRng(c.p, `pitch${String(beat)}`).int(30);
      return { input: `${audioIn(c)}\ntext: beat ${String(beat)}`, output: midiName(m) };
    },
  }),
  M({
    minor: 'Tempo Comparison',
    primary: 'in',
    extras: ['pool'],
    instr: ['Which of the two excerpts has the faster tempo?', 'Compare the tempo of the two clips.'],
    make: (c) => ({ input: pair(c), output: bpm(c.p) >= bpm(extra(c, 0)) ? 'audio_sample1' : 'audio_sample2' }),
  }),
  M({
    minor: 'Instrument Comparison',
    primary: 'in',
    extras: ['pool'],
    instr: ['Do the two clips feature the same lead instrument? Answer yes or no.'],
    make: (c) => ({ input: pair(c), output: compare(c, 'lead', MIX_INSTRUMENTS) }),
  }),
  M({
    minor: 'Key Comparison',
    primary: 'in',
    extras: ['pool'],
    instr: ['Are the two pieces in the same key?', 'Compare the keys of the two excerpts.'],
    make: (c) => ({
      input: pair(c),
      output: `${compare(c, 'key', KEYS)} (${attr(c.p, 'key', KEYS)} vs ${attr(extra(c, 0), 'key', KEYS)})`,
    }),
  }),
  M({
    minor: 'Instrumental Technique Comparison',
    primary: 'in',
    extras: ['pool'],
    instr: ['Is the same playing technique used in both recordings?'],
    zh: ['两段录音使用的演奏技巧相同吗？'],
    make: (c) => ({ input: pair(c), output: compare(c, 'ptech', PLAY_TECHNIQUES) }),
  }),
  M({
    minor: 'Emotion Comparison',
    primary: 'in',
    extras: ['pool'],
    instr: ['Which excerpt sounds happier?', 'Compare the emotions of the two excerpts.'],
    make: (c) => ({
      input: pair(c),
      output: c.rng.chance(0.5) ? 'audio_sample1' : 'audio_sample2',
      other: { moods: [attr(c.p, 'mood', MOODS), attr(extra(c, 0), 'mood', MOODS)] },
    }),
  }),
  M({
    minor: 'Music Caption',
    primary: 'in',
    instr: ['Describe this music.', 'Write a caption for the music clip.'],
    make: (c) => ({ input: audioIn(c), output: musicCaption(c.p) }),
  }),
  M({
    minor: 'Melody Extraction',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Extract the main melody from the mixture.', 'Isolate the melody line of this track.'],
    make: (c) => ({ input: audioIn(c), output: audioOut(c, extra(c, 0)) }),
  }),
  M({
    minor: 'Text-guided Source Separation',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Separate the requested source from the music mixture.'],
    make: (c) => {
      const stem = c.rng.pick(STEMS);
      return { input: `audio: ${ref(c.p)}\ntext: ${stem}`, output: audioOut(c, extra(c, 0)), other: { stem } };
    },
  }),
  M({
    minor: 'Text-to-music',
    primary: 'out',
    instr: ['Generate music that matches the description.', 'Compose a music clip for the following caption.'],
    make: (c) => ({ input: musicCaption(c.p), output: audioOut(c, c.p) }),
  }),
  M({
    minor: 'Text-guided Continuation',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Continue the music following the text description.'],
    make: (c) => ({
      input: `audio: ${ref(c.p)}\ntext: continue with a ${c.rng.pick(TEMPO_WORDS)} ${attr(c.p, 'genre', GENRES)} groove`,
      output: audioOut(c, extra(c, 0)),
    }),
  }),
  M({
    minor: 'Lyrics-to-song',
    primary: 'out',
    instr: ['Generate a song that sings the given lyrics.', 'Turn these lyrics into a song.'],
    make: (c) => ({
      input: `lyrics: ${transcript(c.p)}\ngenre: ${attr(c.p, 'genre', GENRES)}`,
      output: audioOut(c, c.p),
    }),
  }),
  M({
    minor: 'Singing Voice Synthesis',
    primary: 'out',
    instr: ['Sing the lyrics following the given notes.'],
    zh: ['请根据给定的歌词和音符合成歌声。'],
    make: (c) => {
      const r = clipRng(c.p, 'notes');
      const notes = Array.from({ length: 6 + r.int(6) }, () => midiName(57 + r.int(17)));
      return { input: `lyrics: ${transcript(c.p)}\nnotes: ${notes.join(' ')}`, output: audioOut(c, c.p) };
    },
  }),
  M({
    minor: 'Singing Voice Conversion',
    primary: 'in',
    extras: ['pool', 'fresh'],
    instr: ['Convert the singing voice to the timbre of the reference singer.'],
    zh: ['请把这段歌声转换成参考歌手的音色。'],
    make: (c) => ({
      input: `audio: ${ref(c.p)}\nspeaker_audio: ${ref(extra(c, 0))}`,
      output: audioOut(c, extra(c, 1)),
    }),
  }),
];
