/**
 * The 52 source datasets of the synthetic sample corpus and the audio clips drawn from them:
 * audio ids, relative paths (as in the `.scp` files), codec-token shapes and per-clip attributes
 * (speaker, language, transcript, labels) that stay consistent across every task using the clip.
 */
import type { NpyWriteDtype } from './npy-writer.js';
import { Rng, hash2, hashInts, hashString } from './sample-rng.js';
import { SAMPLE_CODEC } from './sample-release-shape.js';
import { sentence } from './sample-text.js';
import { AUDIO_FLAN_TASKS, type Domain } from './task-catalog.js';

/** How a dataset names its clips. */
export type IdStyle = 'libri' | 'spk' | 'flat' | 'yt';

export interface SampleDataset {
  /** "NN_Name", e.g. "13_LibriTTS-R". */
  readonly folder: string;
  readonly domain: Domain;
  /** Transcript language; 'mix' = per speaker, about 40 % Chinese. */
  readonly lang: 'en' | 'zh' | 'mix';
  /**
   * Clip length: 'long' (0.5–3 s) or 'short' (0.06–0.4 s, for datasets whose records carry several
   * clips). Every clip has the sample codec's codebooks: one corpus, one codec.
   */
  readonly clips: 'long' | 'short';
  readonly dtype: NpyWriteDtype;
  /** Extension of the (notional) audio file in `audio_files/`. */
  readonly ext: string;
  readonly source: readonly string[];
  readonly style: IdStyle;
  readonly tag: string;
}

type Row = readonly [
  folder: string,
  lang: SampleDataset['lang'],
  clips: SampleDataset['clips'],
  ext: string,
  source: string,
  style: IdStyle,
  tag: string,
];

// Datasets whose records carry several clips have short clips, so examples stay ≲ 1,300 tokens.
const ROWS: readonly Row[] = [
  ['01_CommonVoice', 'en', 'long', 'mp3', 'crowdsourced', 'flat', 'common_voice_'],
  ['02_Emilia', 'mix', 'short', 'mp3', 'podcast,youtube', 'flat', 'B'],
  ['03_KeSpeech', 'zh', 'long', 'wav', 'crowdsourced', 'spk', '1000'],
  ['04_TIMIT', 'en', 'long', 'wav', 'studio', 'spk', 'DR'],
  ['05_SLURP', 'en', 'long', 'flac', 'crowdsourced', 'flat', 'audio-'],
  ['06_Spoken-SQuAD', 'en', 'long', 'wav', 'synthetic', 'flat', 'para'],
  ['07_ESD', 'mix', 'short', 'wav', 'studio', 'spk', '00'],
  ['08_VoxCeleb1', 'en', 'short', 'wav', 'youtube', 'spk', 'id10'],
  ['09_AMI', 'en', 'long', 'wav', 'meeting', 'flat', 'ES2002-'],
  ['10_LibriMix', 'en', 'short', 'wav', 'audiobook', 'libri', ''],
  ['11_ASVspoof2019', 'en', 'long', 'flac', 'studio', 'flat', 'LA_T_'],
  ['12_MOBIPHONE', 'en', 'long', 'wav', 'studio', 'flat', 'rec'],
  ['13_LibriTTS-R', 'en', 'long', 'wav', 'audiobook', 'libri', ''],
  ['14_VCTK', 'en', 'short', 'flac', 'studio', 'spk', 'p'],
  ['15_VoiceBank-DEMAND', 'en', 'short', 'wav', 'studio', 'spk', 'p'],
  ['16_REVERB', 'en', 'short', 'wav', 'studio', 'flat', 'c0'],
  ['17_DAPS', 'en', 'short', 'wav', 'studio', 'spk', 'f'],
  ['18_TextrolSpeech', 'en', 'long', 'wav', 'audiobook,studio', 'flat', 'ts'],
  ['19_CVSS', 'en', 'short', 'mp3', 'crowdsourced', 'flat', 'common_voice_fr_'],
  ['20_MTG-Jamendo', 'en', 'long', 'mp3', 'jamendo', 'flat', 'track_'],
  ['21_GiantSteps', 'en', 'long', 'mp3', 'beatport', 'flat', 'gs'],
  ['22_NSynth', 'en', 'long', 'wav', 'studio', 'flat', 'note-'],
  ['23_VocalSet', 'en', 'long', 'wav', 'studio', 'spk', 'singer'],
  ['24_CBFdataset', 'zh', 'short', 'wav', 'studio', 'spk', 'player'],
  ['25_FMA', 'en', 'long', 'mp3', 'freemusicarchive', 'flat', ''],
  ['26_Ballroom', 'en', 'short', 'wav', 'radio', 'flat', 'Albums-'],
  ['27_Isophonics', 'en', 'long', 'wav', 'cd', 'flat', 'iso'],
  ['28_Slakh2100', 'en', 'short', 'flac', 'synthetic', 'flat', 'Track'],
  ['29_MIR-ST500', 'zh', 'long', 'mp3', 'youtube', 'flat', 'st'],
  ['30_GTZAN', 'en', 'short', 'wav', 'cd,radio', 'flat', 'gtzan'],
  ['31_Emotify', 'en', 'short', 'mp3', 'unknown', 'flat', 'emo'],
  ['32_MusicCaps', 'en', 'long', 'wav', 'youtube', 'yt', ''],
  ['33_MedleyDB', 'en', 'short', 'wav', 'studio', 'flat', 'MDB'],
  ['34_MUSDB18', 'en', 'short', 'wav', 'studio', 'flat', 'mus'],
  ['35_MusicBench', 'en', 'short', 'wav', 'youtube', 'yt', ''],
  ['36_DALI', 'en', 'long', 'mp3', 'youtube', 'flat', 'dali'],
  ['37_Opencpop', 'zh', 'long', 'wav', 'studio', 'flat', 'cp'],
  ['38_OpenSinger', 'zh', 'short', 'wav', 'studio', 'spk', 'singer'],
  ['39_AudioSet', 'en', 'short', 'wav', 'youtube', 'yt', ''],
  ['40_URBAN-SED', 'en', 'long', 'wav', 'freesound', 'flat', 'soundscape_'],
  ['41_AudioSet-Strong', 'en', 'long', 'wav', 'youtube', 'yt', ''],
  ['42_TAU-Urban-Acoustic-Scenes', 'en', 'long', 'wav', 'field-recording', 'flat', 'scene-'],
  ['43_AudioCaps', 'en', 'long', 'wav', 'youtube', 'yt', ''],
  ['44_Clotho-AQA', 'en', 'long', 'wav', 'freesound', 'flat', 'clotho'],
  ['45_FakeSound', 'en', 'long', 'wav', 'synthetic', 'flat', 'fake'],
  ['46_AVA-Speech', 'en', 'long', 'wav', 'movies', 'yt', ''],
  ['47_MUSAN', 'en', 'long', 'wav', 'freesound,librivox', 'flat', 'musan-'],
  ['48_ESC-50', 'en', 'short', 'wav', 'freesound', 'flat', 'esc'],
  ['49_WavCaps', 'en', 'short', 'flac', 'freesound,bbc-sound-effects', 'flat', 'wc'],
  ['50_FSD50K', 'en', 'short', 'wav', 'freesound', 'flat', ''],
  ['51_AudioTime', 'en', 'long', 'wav', 'synthetic', 'flat', 'at'],
  ['52_VGGSound', 'en', 'short', 'mp3', 'youtube', 'yt', ''],
];

const DTYPES: readonly NpyWriteDtype[] = ['<i2', '<u2', '<i4', '<i8'];

export const SAMPLE_DATASETS: readonly SampleDataset[] = ROWS.map(([folder, lang, clips, ext, source, style, tag]) => {
  const task = AUDIO_FLAN_TASKS.find((t) => t.dataset === folder);
  if (!task) throw new Error(`sample dataset ${folder} has no task in the catalog`);
  const nn = Number(folder.slice(0, 2));
  const dtype = DTYPES[nn % DTYPES.length] as NpyWriteDtype;
  return { folder, domain: task.domain, lang, clips, dtype, ext, source: source.split(','), style, tag };
});

export interface Clip {
  readonly ds: SampleDataset;
  readonly index: number;
  /** Seeded per-clip hash: drives codes, transcript and labels. */
  readonly key: number;
  /** Seeded per-speaker hash: drives speaker-level labels (gender, accent, …). */
  readonly spkKey: number;
  readonly speaker: number;
  readonly lang: 'en' | 'zh';
  readonly frames: number;
  /** `<NN>_<Dataset>_<utterance id>`. */
  readonly id: string;
  /** Relative to `audio_files/`: `<domain>/<NN_Dataset>/…/<name>.<ext>`. */
  readonly path: string;
}

const pad = (n: number, w: number): string => String(n).padStart(w, '0');
const YT_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function localName(
  ds: SampleDataset,
  index: number,
  key: number,
  speaker: number,
  seedKey: number,
): [id: string, rel: string] {
  const bucket = pad(Math.floor(index / 1000), 3);
  switch (ds.style) {
    case 'libri': {
      const spk = 19 + ((speaker * 37) % 9000);
      const chap = 10_000 + (hashInts(seedKey, speaker, hashInts(key, 14) % 3) % 190_000);
      return [`${spk}_${chap}_${pad(index, 6)}_000000`, `${spk}/${chap}_${pad(index, 6)}`];
    }
    case 'spk': {
      const name = `${ds.tag}${pad(225 + speaker, 3)}`;
      return [`${name}_${pad(index, 5)}`, `${name}/${name}_${pad(index, 5)}`];
    }
    case 'flat':
      return [`${ds.tag}${pad(index, 7)}`, `${bucket}/${ds.tag}${pad(index, 7)}`];
    case 'yt': {
      let yt = '';
      for (let i = 0; i < 11; i++) yt += YT_ALPHABET[hashInts(key, 15, i) % 64] ?? 'A';
      return [`${yt}_${pad(index, 6)}`, `${bucket}/Y${yt}_${pad(index, 6)}`];
    }
  }
}

/** Clip `index` of `nClips` in dataset `ds`, for the corpus seed hash `seedKey`. */
export function makeClip(ds: SampleDataset, index: number, nClips: number, seedKey: number): Clip {
  const nn = Number(ds.folder.slice(0, 2));
  const key = hashInts(seedKey, nn, index);
  const nSpeakers = Math.max(2, Math.ceil(nClips / 25));
  const speaker = hashInts(key, 11) % nSpeakers;
  const spkKey = hashInts(seedKey, nn, speaker, 0x5bd1);
  const lang = ds.lang === 'mix' ? (hashInts(spkKey, 16) % 5 < 2 ? 'zh' : 'en') : ds.lang;
  const frames = ds.clips === 'long' ? 25 + (hashInts(key, 12) % 126) : 16 + (hashInts(key, 12) % 16);
  const [local, rel] = localName(ds, index, key, speaker, hashInts(seedKey, nn));
  return {
    ds,
    index,
    key,
    spkKey,
    speaker,
    lang,
    frames,
    id: `${ds.folder}_${local}`,
    path: `${ds.domain}/${ds.folder}/${rel}.${ds.ext}`,
  };
}

/** The `.npy` path of a clip relative to `audio_tokens/`: its scp path with the extension replaced. */
export function tokenPath(clip: Clip): string {
  return clip.path.replace(/\.[^./]+$/, '.npy');
}

/** Codec codes in C order (codebook-major) and the `.npy` shape. */
export function clipCodes(clip: Clip): { codes: Int32Array; shape: number[] } {
  const n = SAMPLE_CODEC.codebooks * clip.frames;
  const codes = new Int32Array(n);
  const rng = new Rng(clip.key, 99);
  for (let i = 0; i < n; i++) codes[i] = rng.u32() & 1023;
  return { codes, shape: [SAMPLE_CODEC.codebooks, clip.frames] };
}

/** Duration in seconds at the sample codec's frame rate. */
export function clipSeconds(clip: Clip): number {
  return clip.frames / SAMPLE_CODEC.frame_rate;
}

const NAME_HASHES = new Map<string, number>();
function nameHash(name: string): number {
  let h = NAME_HASHES.get(name);
  if (h === undefined) {
    h = hashString(name);
    NAME_HASHES.set(name, h);
  }
  return h;
}

/** A clip-level label, the same for every task that asks about this clip. */
export function attr<T>(clip: Clip, name: string, list: readonly T[]): T {
  return list[hash2(clip.key, nameHash(name)) % list.length] as T;
}

/** A speaker-level label (gender, accent, …), the same for all clips of a speaker. */
export function speakerAttr<T>(clip: Clip, name: string, list: readonly T[]): T {
  return list[hash2(clip.spkKey, nameHash(name)) % list.length] as T;
}

/** A deterministic per-clip Rng for derived content (e.g. beat times, chord sequences). */
export function clipRng(clip: Clip, purpose: string): Rng {
  return new Rng(hash2(clip.key, nameHash(purpose)));
}

/** What is said in the clip (consistent between ASR, TTS, translation, …). */
export function transcript(clip: Clip): string {
  const rng = clipRng(clip, 'transcript');
  const s = sentence(rng, clip.lang);
  return rng.chance(0.3) ? `${s}${clip.lang === 'zh' ? '' : ' '}${sentence(rng, clip.lang)}` : s;
}
