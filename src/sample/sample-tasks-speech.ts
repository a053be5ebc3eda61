/** Record templates for the 20 speech recognition and classification tasks of the sample corpus (text answers). */
import { attr, clipRng, clipSeconds, speakerAttr, transcript } from './sample-datasets.js';
import { audioIn, extra, phrase, ref, type TaskTemplate } from './sample-task-kit.js';
import {
  ACCENTS,
  AGES,
  DEVICES,
  DIALECTS,
  EMOTIONS_ZH,
  INTENTS,
  LANGUAGES,
  PHONES,
  VOCODERS,
  emotion,
  gender,
  speakerCaption,
} from './sample-labels-speech.js';
import { secs, sentence } from './sample-text.js';
import type { Clip } from './sample-datasets.js';

const sameSpeaker = (a: Clip, b: Clip): boolean => a.spkKey === b.spkKey;
const LABEL = ['{}', 'The answer is {}.', '{}'];

const S = (t: Omit<TaskTemplate, 'domain'>): TaskTemplate => ({ domain: 'speech', ...t });

export const SPEECH_RECOGNITION_TEMPLATES: readonly TaskTemplate[] = [
  S({
    minor: 'ASR',
    primary: 'in',
    instr: [
      'Transcribe the speech into text.',
      'Please write down what is said in the audio.',
      'Convert the spoken content of this recording into written text.',
      'What does the speaker say?',
    ],
    zh: ['请将这段语音转写成文字。', '请识别音频中的语音内容。'],
    make: (c) => ({ input: audioIn(c), output: transcript(c.p) }),
  }),
  S({
    minor: 'Dialect ASR',
    primary: 'in',
    instr: [
      'Transcribe this dialectal Chinese speech into standard Mandarin text.',
      'Recognize the speech in this Chinese dialect recording.',
    ],
    zh: ['请将这段方言语音转写为普通话文本。', '请识别这段方言录音的内容。'],
    make: (c) => ({
      input: audioIn(c),
      output: transcript(c.p),
      other: { dialect: speakerAttr(c.p, 'dialect', DIALECTS)[0] },
    }),
  }),
  S({
    minor: 'Phonetic Recognition',
    primary: 'in',
    instr: ['Recognize the phoneme sequence in the speech.', 'Transcribe the audio into TIMIT phonetic symbols.'],
    make: (c) => {
      const r = clipRng(c.p, 'phones');
      const n = 8 + r.int(20);
      const phones = ['h#', ...Array.from({ length: n }, () => r.pick(PHONES)), 'h#'];
      return { input: audioIn(c), output: phones.join(' ') };
    },
  }),
  S({
    minor: 'Intent Classification',
    primary: 'in',
    instr: ['Identify the intent of the spoken command.', 'Classify the user intent expressed in this utterance.'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'intent', INTENTS) }),
  }),
  S({
    minor: 'Speech-to-text Translation',
    primary: 'in',
    instr: ['Please translate the speech into the text in Chinese.', 'Translate the English speech into Chinese text.'],
    zh: ['请把这段英语语音翻译成中文。'],
    make: (c) => ({ input: audioIn(c), output: sentence(clipRng(c.p, 'translation'), 'zh') }),
  }),
  S({
    minor: 'Gender Recognition',
    primary: 'in',
    instr: ['What is the gender of the speaker?', 'Identify whether the speaker is male or female.'],
    make: (c) => ({ input: audioIn(c), output: phrase(c, ['{}', 'The speaker is {}.'], gender(c.p)) }),
  }),
  S({
    minor: 'Age Recognition',
    primary: 'in',
    instr: ['Estimate the age group of the speaker.', 'How old does the speaker sound? Answer with an age group.'],
    make: (c) => ({
      input: audioIn(c),
      output: phrase(c, ['{}', 'The speaker is in their {}.'], speakerAttr(c.p, 'age', AGES)),
    }),
  }),
  S({
    minor: 'Emotion Recognition',
    primary: 'in',
    instr: ['Recognize the emotion of the speaker.', 'What emotion is conveyed in this speech?'],
    zh: ['请识别说话人的情绪。'],
    make: (c) => ({
      input: audioIn(c),
      output: c.zh ? (EMOTIONS_ZH[emotion(c.p)] ?? emotion(c.p)) : phrase(c, LABEL, emotion(c.p)),
    }),
  }),
  S({
    minor: 'Accent Recognition',
    primary: 'in',
    instr: ['Identify the accent of the speaker.', 'Which English accent does the speaker have?'],
    make: (c) => ({ input: audioIn(c), output: speakerAttr(c.p, 'accent', ACCENTS) }),
  }),
  S({
    minor: 'Spoken Paragraph Recognition',
    primary: 'in',
    instr: ['Transcribe the whole spoken paragraph.', 'Write out the full paragraph read in this recording.'],
    make: (c) => {
      const r = clipRng(c.p, 'paragraph');
      return { input: audioIn(c), output: [transcript(c.p), sentence(r, 'en'), sentence(r, 'en')].join(' ') };
    },
  }),
  S({
    minor: 'Language Identification',
    primary: 'in',
    instr: ['Identify the language spoken in the audio.', 'Which language is this?'],
    make: (c) => ({ input: audioIn(c), output: speakerAttr(c.p, 'language', LANGUAGES) }),
  }),
  S({
    minor: 'Dialect Identification',
    primary: 'in',
    instr: ['Which Chinese dialect is spoken in this recording?', 'Identify the dialect of the speaker.'],
    zh: ['请判断这段语音属于哪种方言。'],
    make: (c) => {
      const [en, zh] = speakerAttr(c.p, 'dialect', DIALECTS);
      return { input: audioIn(c), output: c.zh ? zh : en };
    },
  }),
  S({
    minor: 'Speaker Verification',
    primary: 'in',
    extras: ['pool'],
    instr: [
      'Are the two utterances spoken by the same person? Answer yes or no.',
      'Verify whether both recordings come from the same speaker.',
    ],
    make: (c) => {
      const other = extra(c, 0);
      const same = sameSpeaker(c.p, other);
      return {
        input: `audio_sample1: ${ref(c.p)}\naudio_sample2: ${ref(other)}`,
        output: same ? 'Yes' : 'No',
        other: { same_speaker: same },
      };
    },
  }),
  S({
    minor: 'Speaker Diarization',
    primary: 'in',
    instr: [
      'Who spoke when? Give the speaker turns with start and end times.',
      'Perform speaker diarization on the recording.',
    ],
    make: (c) => {
      const r = clipRng(c.p, 'diarization');
      const total = clipSeconds(c.p);
      const turns: string[] = [];
      let t = 0;
      let spk = 0;
      const nSpk = 2 + r.int(3);
      while (t < total - 0.1) {
        const end = Math.min(total, t + 0.3 + r.next() * 1.2);
        turns.push(`${secs(t)}-${secs(end)}: SPEAKER_${String.fromCharCode(65 + spk)}`);
        spk = (spk + 1 + r.int(nSpk - 1)) % nSpk;
        t = end;
      }
      return { input: audioIn(c), output: turns.join('\n'), other: { num_speakers: nSpk } };
    },
  }),
  S({
    minor: 'Speaker Extraction',
    primary: 'in',
    extras: ['pool'],
    instr: [
      'Transcribe only what the target speaker in the reference audio says in the mixture.',
      'Given a reference of the target speaker, recognize their speech in the mixture.',
    ],
    make: (c) => ({ input: `audio: ${ref(c.p)}\nspeaker_audio: ${ref(extra(c, 0))}`, output: transcript(c.p) }),
  }),
  S({
    minor: 'Speaker Identification',
    primary: 'in',
    instr: ['Identify the speaker of this utterance.', 'Which speaker ID does this recording belong to?'],
    make: (c) => ({ input: audioIn(c), output: `p${String(225 + c.p.speaker)}` }),
  }),
  S({
    minor: 'Speech Caption',
    primary: 'in',
    instr: ['Describe the speaking style of the speaker.', 'Write a caption describing the voice in this recording.'],
    make: (c) => ({ input: audioIn(c), output: speakerCaption(c.p) }),
  }),
  S({
    minor: 'Deepfake Detection',
    primary: 'in',
    instr: ['Is this speech genuine or spoofed?', 'Detect whether the utterance is bona fide or a deepfake.'],
    make: (c) => ({
      input: audioIn(c),
      output: attr(c.p, 'vocoder', VOCODERS).startsWith('bona') ? 'bonafide' : 'spoof',
    }),
  }),
  S({
    minor: 'Vocoder Type Classification',
    primary: 'in',
    instr: ['Which vocoder generated this speech?', 'Classify the vocoder type used to synthesize the audio.'],
    make: (c) => ({ input: audioIn(c), output: attr(c.p, 'vocoder', VOCODERS) }),
  }),
  S({
    minor: 'Device Recognition',
    primary: 'in',
    instr: [
      'Which recording device was used to capture this speech?',
      'Identify the mobile phone model that recorded the audio.',
    ],
    make: (c) => ({ input: audioIn(c), output: speakerAttr(c.p, 'device', DEVICES) }),
  }),
];
