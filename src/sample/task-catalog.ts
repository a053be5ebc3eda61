/**
 * The 80 Audio-FLAN minor tasks (arXiv 2502.16584, appendix A.3): 23 major tasks in 3 domains.
 *
 * `instances` is a paper-scale estimate: each major task's published size split over its minor
 * tasks by a fixed, plausible split (the paper publishes only major-task sizes). Domain totals
 * follow the paper: speech 100.42M, music 2.17M, audio 5.91M (108.5M). The audio major sizes as
 * printed (1.30M + 0.82M + 10K + 1.08M + 0.38M + 0.15M + 0.89M + 1.31M) add up to 5.94M; they are
 * rounded, so each one is taken ~4K below its printed value to meet the 5.91M total.
 *
 * `dataset` is the "NN_Name" source-dataset folder the sample corpus files the task under; 52
 * datasets, several tasks per dataset where the real dataset serves several tasks.
 */

export type Domain = 'speech' | 'music' | 'audio';
export type TaskKind = 'understanding' | 'generation';

export interface CatalogTask {
  readonly domain: Domain;
  readonly major: string;
  readonly minor: string;
  readonly ug: TaskKind;
  /** Paper-scale instance estimate: the major size split across its minors (a fixed split). */
  readonly instances: number;
  /** "NN_Name" source dataset folder, e.g. "13_LibriTTS-R"; several tasks share a dataset. */
  readonly dataset: string;
}

export const DOMAINS: readonly Domain[] = ['speech', 'music', 'audio'];

type Row = readonly [minor: string, instances: number, dataset: string];
type Major = readonly [domain: Domain, major: string, ug: TaskKind, minors: readonly Row[]];

const U: TaskKind = 'understanding';
const G: TaskKind = 'generation';

const MAJORS: readonly Major[] = [
  // ---- speech: 8 major, 34 minor, 100.42M ----
  [
    'speech',
    'Speech Recognition',
    U,
    [
      ['ASR', 10_600_000, '02_Emilia'],
      ['Dialect ASR', 900_000, '03_KeSpeech'],
      ['Phonetic Recognition', 550_000, '04_TIMIT'],
    ],
  ],
  [
    'speech',
    'Spoken Language Understanding',
    U,
    [
      ['Intent Classification', 1_250_000, '05_SLURP'],
      ['Speech-to-text Translation', 25_000_000, '13_LibriTTS-R'],
    ],
  ],
  [
    'speech',
    'Paralinguistic Attribute Recognition',
    U,
    [
      ['Gender Recognition', 3_200_000, '01_CommonVoice'],
      ['Age Recognition', 1_800_000, '01_CommonVoice'],
      ['Emotion Recognition', 2_400_000, '07_ESD'],
      ['Accent Recognition', 1_600_000, '01_CommonVoice'],
      ['Spoken Paragraph Recognition', 700_000, '06_Spoken-SQuAD'],
      ['Language Identification', 5_500_000, '01_CommonVoice'],
      ['Dialect Identification', 1_270_000, '03_KeSpeech'],
    ],
  ],
  [
    'speech',
    'Speaker Recognition',
    U,
    [
      ['Speaker Verification', 300_000, '08_VoxCeleb1'],
      ['Speaker Diarization', 60_000, '09_AMI'],
      ['Speaker Extraction', 120_000, '10_LibriMix'],
      ['Speaker Identification', 250_000, '14_VCTK'],
    ],
  ],
  ['speech', 'Speech Caption', U, [['Speech Caption', 350_000, '18_TextrolSpeech']]],
  [
    'speech',
    'Speech Detection',
    U,
    [
      ['Deepfake Detection', 900_000, '11_ASVspoof2019'],
      ['Vocoder Type Classification', 420_000, '11_ASVspoof2019'],
      ['Device Recognition', 250_000, '12_MOBIPHONE'],
    ],
  ],
  [
    'speech',
    'Speech Enhancement',
    G,
    [
      ['Denoising', 520_000, '15_VoiceBank-DEMAND'],
      ['Dereverberation', 300_000, '16_REVERB'],
      ['Declipping', 200_000, '17_DAPS'],
      ['Bandwidth Extension', 260_000, '14_VCTK'],
      ['SNR Estimation', 200_000, '15_VoiceBank-DEMAND'],
    ],
  ],
  [
    'speech',
    'Speech Generation',
    G,
    [
      ['TTS', 14_000_000, '13_LibriTTS-R'],
      ['Zero-shot TTS', 12_500_000, '02_Emilia'],
      ['Emotional TTS', 1_200_000, '07_ESD'],
      ['Zero-shot Emotional TTS', 900_000, '07_ESD'],
      ['Descriptive Speech Synthesis', 2_400_000, '18_TextrolSpeech'],
      ['Spontaneous TTS', 1_520_000, '02_Emilia'],
      ['Voice Conversion', 4_500_000, '14_VCTK'],
      ['Emotion Conversion', 600_000, '07_ESD'],
      ['Speech-to-Speech Translation', 3_900_000, '19_CVSS'],
    ],
  ],
  // ---- music: 7 major, 28 minor, 2.17M ----
  [
    'music',
    'Global MIR',
    U,
    [
      ['Key Detection', 22_000, '21_GiantSteps'],
      ['Scale Recognition', 12_000, '21_GiantSteps'],
      ['Music Tagging', 70_000, '20_MTG-Jamendo'],
      ['Genre Classification', 60_000, '20_MTG-Jamendo'],
      ['Emotion Classification', 30_000, '20_MTG-Jamendo'],
      ['Pitch Classification', 40_000, '22_NSynth'],
      ['Instrument Classification', 45_000, '22_NSynth'],
      ['Vocal Technique Classification', 15_000, '23_VocalSet'],
      ['Instrumental Technique Classification', 16_000, '24_CBFdataset'],
      ['Artist Identification', 30_000, '25_FMA'],
    ],
  ],
  [
    'music',
    'Sequential MIR',
    U,
    [
      ['Beat Tracking', 150_000, '26_Ballroom'],
      ['Chord Estimation', 200_000, '27_Isophonics'],
      ['Progression Extraction', 80_000, '27_Isophonics'],
    ],
  ],
  [
    'music',
    'Single Music Reasoning',
    U,
    [
      ['Beat-level Instrument Recognition', 48_930, '28_Slakh2100'],
      ['Beat-level Pitch Estimation', 46_930, '29_MIR-ST500'],
    ],
  ],
  [
    'music',
    'Multiple Music Reasoning',
    U,
    [
      ['Tempo Comparison', 150_000, '26_Ballroom'],
      ['Instrument Comparison', 130_000, '28_Slakh2100'],
      ['Key Comparison', 120_000, '30_GTZAN'],
      ['Instrumental Technique Comparison', 70_000, '24_CBFdataset'],
      ['Emotion Comparison', 100_000, '31_Emotify'],
    ],
  ],
  ['music', 'Music Caption', U, [['Music Caption', 28_210, '32_MusicCaps']]],
  [
    'music',
    'Music Separation',
    G,
    [
      ['Melody Extraction', 15_260, '33_MedleyDB'],
      ['Text-guided Source Separation', 25_000, '34_MUSDB18'],
    ],
  ],
  [
    'music',
    'Music Generation',
    G,
    [
      ['Text-to-music', 250_000, '32_MusicCaps'],
      ['Text-guided Continuation', 120_000, '35_MusicBench'],
      ['Lyrics-to-song', 90_000, '36_DALI'],
      ['Singing Voice Synthesis', 130_000, '37_Opencpop'],
      ['Singing Voice Conversion', 80_000, '38_OpenSinger'],
    ],
  ],
  // ---- audio: 8 major, 18 minor, 5.91M ----
  [
    'audio',
    'Audio Event Recognition',
    U,
    [
      ['Sound Event Sequence Recognition', 180_000, '40_URBAN-SED'],
      ['Sound Event Recognition', 620_000, '39_AudioSet'],
      ['Sound Event Detection', 300_000, '41_AudioSet-Strong'],
      ['Acoustic Scene Classification', 195_700, '42_TAU-Urban-Acoustic-Scenes'],
    ],
  ],
  ['audio', 'Audio Caption', U, [['Audio Caption', 815_700, '43_AudioCaps']]],
  ['audio', 'Audio Advanced Understanding', U, [['Sound Event Understanding', 10_000, '44_Clotho-AQA']]],
  [
    'audio',
    'Audio Detection',
    U,
    [
      ['Deepfake Audio Detection', 455_700, '45_FakeSound'],
      ['Voice Activity Detection', 620_000, '46_AVA-Speech'],
    ],
  ],
  [
    'audio',
    'Audio Classification',
    U,
    [
      ['Speech/Silence/Music/Noise Classification', 215_700, '47_MUSAN'],
      ['Speech-Nonspeech Detection', 160_000, '46_AVA-Speech'],
    ],
  ],
  [
    'audio',
    'Audio Enhancement',
    G,
    [
      ['Audio Inpainting', 70_000, '39_AudioSet'],
      ['Audio Super-resolution', 75_700, '48_ESC-50'],
    ],
  ],
  [
    'audio',
    'Audio Separation',
    G,
    [
      ['Text-guided Source Separation', 400_000, '49_WavCaps'],
      ['Label-querying Sound Extraction', 285_700, '50_FSD50K'],
      ['Audio-querying Sound Extraction', 200_000, '50_FSD50K'],
    ],
  ],
  [
    'audio',
    'Audio Generation',
    G,
    [
      ['Text-guided Audio Generation', 800_000, '43_AudioCaps'],
      ['Time-grounded Text-to-Audio Generation', 205_800, '51_AudioTime'],
      ['Audio Continuation', 300_000, '52_VGGSound'],
    ],
  ],
];

export const AUDIO_FLAN_TASKS: readonly CatalogTask[] = Object.freeze(
  MAJORS.flatMap(([domain, major, ug, minors]) =>
    minors.map(([minor, instances, dataset]) => Object.freeze({ domain, major, minor, ug, instances, dataset })),
  ),
);

/** The task's selector path `domain/major/minor` (docs/corpus.md). */
export function taskPath(t: Pick<CatalogTask, 'domain' | 'major' | 'minor'>): string {
  return `${t.domain}/${t.major}/${t.minor}`;
}
