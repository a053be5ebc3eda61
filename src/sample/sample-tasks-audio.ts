/** Record templates for the 18 audio tasks of the sample corpus. */
import { attr, clipRng, clipSeconds } from './sample-datasets.js';
import { audioIn, audioOut, extra, phrase, ref, type TaskTemplate } from './sample-task-kit.js';
import { EVENT_PHRASES, SCENES, SOUND_EVENTS, SSMN, URBAN_EVENTS } from './sample-labels-audio.js';
import { pickDistinct, secs } from './sample-text.js';
import type { Clip } from './sample-datasets.js';

const A = (t: Omit<TaskTemplate, 'domain'>): TaskTemplate => ({ domain: 'audio', ...t });
const events = (c: Clip, n = 2): string[] => pickDistinct(clipRng(c, 'events'), SOUND_EVENTS, n);
const caption = (c: Clip): string => {
  const [a, b] = events(c).map((e) => EVENT_PHRASES[e] ?? e.toLowerCase());
  const s = `${a ?? 'a sound plays'} while ${b ?? 'wind blows'} in the background`;
  return `${s.charAt(0).toUpperCase()}${s.slice(1)}.`;
};
const spans = (c: Clip, labels: readonly string[]): string[] => {
  const r = clipRng(c, 'spans');
  const total = clipSeconds(c);
  return labels.map((l) => {
    const start = r.next() * total * 0.6;
    return `${l}: ${secs(start)}-${secs(Math.min(total, start + 0.2 + r.next() * total * 0.4))}`;
  });
};
const hasSpeech = (c: Clip): boolean => attr(c, 'ssmn', SSMN) === 'speech';

export const AUDIO_TEMPLATES: readonly TaskTemplate[] = [
  A({
    minor: 'Sound Event Sequence Recognition',
    primary: 'in',
    instr: ['List the sound events in the order they occur.'],
    make: (c) => ({
      input: audioIn(c),
      output: pickDistinct(clipRng(c.p, 'urban'), URBAN_EVENTS, 2 + clipRng(c.p, 'n').int(3)).join(', '),
    }),
  }),
  A({
    minor: 'Sound Event Recognition',
    primary: 'in',
    instr: ['What sound events can be heard?', 'Recognize the sounds in this clip.'],
    make: (c) => ({ input: audioIn(c), output: events(c.p, 1 + clipRng(c.p, 'n').int(2)).join(', ') }),
  }),
  A({
    minor: 'Sound Event Detection',
    primary: 'in',
    instr: ['Detect the sound events with their onset and offset times.'],
    make: (c) => ({ input: audioIn(c), output: spans(c.p, events(c.p, 2)).join('\n') }),
  }),
  A({
    minor: 'Acoustic Scene Classification',
    primary: 'in',
    instr: ['In what kind of place was this recorded?', 'Classify the acoustic scene.'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'scene', SCENES) }),
  }),
  A({
    minor: 'Audio Caption',
    primary: 'in',
    instr: ['Describe the audio.', 'Write a short caption for this sound recording.'],
    make: (c) => ({ input: audioIn(c), output: caption(c.p) }),
  }),
  A({
    minor: 'Sound Event Understanding',
    primary: 'in',
    instr: ['Answer the question about the audio.'],
    make: (c) => {
      const [e] = events(c.p, 1);
      const asked = c.rng.chance(0.5) ? (e ?? 'Dog') : c.rng.pick(SOUND_EVENTS);
      return {
        input: `${audioIn(c)}\ntext: Can you hear any ${asked.toLowerCase()} sound in the recording?`,
        output: asked === e ? 'yes' : 'no',
      };
    },
  }),
  A({
    minor: 'Deepfake Audio Detection',
    primary: 'in',
    instr: ['Is this audio real or generated?', 'Detect whether the sound was synthesized.'],
    make: (c) => ({
      input: audioIn(c),
      output: phrase(c, ['{}', 'This audio is {}.'], attr(c.p, 'fake', ['real', 'fake'])),
    }),
  }),
  A({
    minor: 'Voice Activity Detection',
    primary: 'in',
    instr: ['Find the segments that contain speech.', 'Give the start and end times of voice activity.'],
    make: (c) => ({
      input: audioIn(c),
      output: hasSpeech(c.p) ? spans(c.p, ['speech', 'speech']).join('\n') : 'no speech',
    }),
  }),
  A({
    minor: 'Speech/Silence/Music/Noise Classification',
    primary: 'in',
    instr: ['Is this clip speech, silence, music or noise?'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'ssmn', SSMN) }),
  }),
  A({
    minor: 'Speech-Nonspeech Detection',
    primary: 'in',
    instr: ['Does the clip contain speech?', 'Classify the clip as speech or non-speech.'],
    make: (c) => ({ input: audioIn(c), output: hasSpeech(c.p) ? 'speech' : 'non-speech' }),
  }),
  A({
    minor: 'Audio Inpainting',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Fill in the missing gap of the audio.'],
    make: (c) => {
      const t = clipSeconds(c.p) / 3;
      return {
        input: `${audioIn(c)}\ntext: the gap is from ${secs(t)}s to ${secs(t + 0.4)}s`,
        output: audioOut(c, extra(c, 0)),
      };
    },
  }),
  A({
    minor: 'Audio Super-resolution',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Increase the sampling rate of this audio to 44.1 kHz.'],
    make: (c) => ({ input: audioIn(c), output: audioOut(c, extra(c, 0)) }),
  }),
  A({
    minor: 'Text-guided Source Separation',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Extract the sound described by the text from the mixture.'],
    make: (c) => ({
      input: `audio: ${ref(c.p)}\ntext: ${EVENT_PHRASES[events(c.p, 1)[0] ?? 'Dog'] ?? 'a dog barks'}`,
      output: audioOut(c, extra(c, 0)),
    }),
  }),
  A({
    minor: 'Label-querying Sound Extraction',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Extract the sound of the given class.'],
    make: (c) => ({
      input: `audio: ${ref(c.p)}\nlabel: ${events(c.p, 1)[0] ?? 'Dog'}`,
      output: audioOut(c, extra(c, 0)),
    }),
  }),
  A({
    minor: 'Audio-querying Sound Extraction',
    primary: 'in',
    extras: ['pool', 'fresh'],
    instr: ['Extract the sound that is similar to the audio prompt.'],
    make: (c) => ({ input: `audio: ${ref(c.p)}\naudio prompt: ${ref(extra(c, 0))}`, output: audioOut(c, extra(c, 1)) }),
  }),
  A({
    minor: 'Text-guided Audio Generation',
    primary: 'out',
    instr: ['Generate audio that matches the description.', 'Create a sound clip for this caption.'],
    make: (c) => ({ input: caption(c.p), output: audioOut(c, c.p) }),
  }),
  A({
    minor: 'Time-grounded Text-to-Audio Generation',
    primary: 'out',
    instr: ['Generate audio with the events at the given times.'],
    make: (c) => ({ input: spans(c.p, events(c.p, 2)).join('; '), output: audioOut(c, c.p) }),
  }),
  A({
    minor: 'Audio Continuation',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Continue this audio.', 'Generate a natural continuation of the sound.'],
    make: (c) => ({ input: audioIn(c), output: audioOut(c, extra(c, 0)) }),
  }),
];
