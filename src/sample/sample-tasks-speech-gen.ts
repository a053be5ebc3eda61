/**
 * Record templates for the 14 speech-generation tasks of the sample corpus: enhancement (with
 * SNR estimation, which reads the same noisy clips), synthesis and conversion. The recognition
 * tasks are in sample-tasks-speech.ts.
 */
import { attr, clipRng, transcript } from './sample-datasets.js';
import { audioIn, audioOut, extra, phrase, ref, type TaskTemplate } from './sample-task-kit.js';
import { EMOTIONS, SNRS, SPEECH_LANGS_S2ST, emotion, speakerCaption } from './sample-labels-speech.js';
import { pickDistinct, spontaneous } from './sample-text.js';

const S = (t: Omit<TaskTemplate, 'domain'>): TaskTemplate => ({ domain: 'speech', ...t });

export const SPEECH_GENERATION_TEMPLATES: readonly TaskTemplate[] = [
  S({
    minor: 'Denoising',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Remove the background noise from the speech.', 'Enhance this noisy recording.'],
    make: (c) => ({ input: audioIn(c), output: audioOut(c, extra(c, 0), true) }),
  }),
  S({
    minor: 'Dereverberation',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Remove the reverberation from the speech.', 'Make this reverberant recording sound dry.'],
    make: (c) => ({ input: audioIn(c), output: audioOut(c, extra(c, 0), true) }),
  }),
  S({
    minor: 'Declipping',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Restore the clipped speech signal.', 'Repair the clipping distortion in this recording.'],
    make: (c) => ({ input: audioIn(c), output: audioOut(c, extra(c, 0), true) }),
  }),
  S({
    minor: 'Bandwidth Extension',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Upsample this narrow-band speech to 16 kHz.', 'Extend the bandwidth of the speech signal.'],
    make: (c) => ({ input: audioIn(c), output: audioOut(c, extra(c, 0), true) }),
  }),
  S({
    minor: 'SNR Estimation',
    primary: 'in',
    instr: ['Estimate the signal-to-noise ratio of the recording in dB.', 'What is the SNR of this noisy speech?'],
    make: (c) => {
      const snr = attr(c.p, 'snr', SNRS);
      return {
        input: audioIn(c),
        output: phrase(c, ['{} dB', 'The SNR is {} dB.'], String(snr)),
        other: { snr_db: snr },
      };
    },
  }),
  S({
    minor: 'TTS',
    primary: 'out',
    instr: [
      'Convert the text to speech.',
      'Please read the following text aloud.',
      'Synthesize speech for the given text.',
    ],
    make: (c) => ({
      input: c.rng.chance(0.5) ? transcript(c.p) : `text: ${transcript(c.p)}`,
      output: audioOut(c, c.p, true),
    }),
  }),
  S({
    minor: 'Zero-shot TTS',
    primary: 'out',
    extras: ['pool'],
    instr: [
      'Read the text in the voice of the speaker in the audio prompt.',
      'Clone the voice of the prompt and speak the text.',
    ],
    zh: ['请用提示音频中说话人的声音朗读以下文本。'],
    make: (c) => ({
      input: `text: ${transcript(c.p)}\naudio prompt: ${ref(extra(c, 0))}`,
      output: audioOut(c, c.p, true),
    }),
  }),
  S({
    minor: 'Emotional TTS',
    primary: 'out',
    instr: ['Synthesize the text with the given emotion.', 'Read the text aloud in the specified emotional tone.'],
    zh: ['请用指定的情绪朗读下面的文字。'],
    make: (c) => ({
      input: `text: ${transcript(c.p)}\nemotion: ${emotion(c.p)}`,
      output: audioOut(c, c.p, true),
      other: { emotion: emotion(c.p) },
    }),
  }),
  S({
    minor: 'Zero-shot Emotional TTS',
    primary: 'out',
    extras: ['pool'],
    instr: ['Speak the text with the given emotion in the voice of the audio prompt.'],
    make: (c) => ({
      input: `text: ${transcript(c.p)}\nemotion: ${emotion(c.p)}\naudio prompt: ${ref(extra(c, 0))}`,
      output: audioOut(c, c.p, true),
    }),
  }),
  S({
    minor: 'Descriptive Speech Synthesis',
    primary: 'out',
    instr: [
      'Generate speech for the text following the voice description.',
      'Synthesize the text in the style described.',
    ],
    make: (c) => ({
      input: `text: ${transcript(c.p)}\ndescription: ${speakerCaption(c.p)}`,
      output: audioOut(c, c.p, true),
    }),
  }),
  S({
    minor: 'Spontaneous TTS',
    primary: 'out',
    instr: [
      'Synthesize conversational, spontaneous-sounding speech for the text.',
      'Read this casually, like natural conversation.',
    ],
    zh: ['请用自然口语的方式说出下面的话。'],
    make: (c) => ({
      input: `text: ${spontaneous(clipRng(c.p, 'spont'), transcript(c.p), c.p.lang)}`,
      output: audioOut(c, c.p, true),
    }),
  }),
  S({
    minor: 'Voice Conversion',
    primary: 'in',
    extras: ['pool', 'fresh'],
    instr: [
      'Convert the voice in the audio to the voice of the target speaker.',
      'Make the first recording sound like the speaker of the reference.',
    ],
    make: (c) => ({
      input: `audio: ${ref(c.p)}\nspeaker_audio: ${ref(extra(c, 0))}`,
      output: audioOut(c, extra(c, 1), true),
    }),
  }),
  S({
    minor: 'Emotion Conversion',
    primary: 'in',
    extras: ['fresh'],
    instr: [
      'Change the emotion of the speech to the target emotion.',
      'Re-synthesize the utterance with a different emotion.',
    ],
    make: (c) => {
      const target = c.rng.pick(EMOTIONS.filter((e) => e !== emotion(c.p)));
      return {
        input: `audio: ${ref(c.p)}\ntarget emotion: ${target}`,
        output: audioOut(c, extra(c, 0), true),
        other: { source_emotion: emotion(c.p), target_emotion: target },
      };
    },
  }),
  S({
    minor: 'Speech-to-Speech Translation',
    primary: 'in',
    extras: ['fresh'],
    instr: ['Translate the speech into English speech.', 'Speak the English translation of this utterance.'],
    make: (c) => ({
      input: audioIn(c),
      output: audioOut(c, extra(c, 0), true),
      other: {
        source_language: pickDistinct(clipRng(c.p, 'lang'), SPEECH_LANGS_S2ST, 1)[0] ?? 'French',
        target_language: 'English',
      },
    }),
  }),
];
