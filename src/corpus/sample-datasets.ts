/**
 * The 52 source datasets of the synthetic sample corpus and the audio clips drawn from them:
 * audio ids, relative paths (as in the `.scp` files), codec-token shapes and per-clip attributes
 * (speaker, language, transcript, labels) that stay consistent across every task using the clip.
 */
import type { NpyWriteDtype } from './npy-writer.js';
import { Rng, hash2, hashInts, hashString } from './sample-rng.js';
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
  /** 1 or 8 codec codebooks: `.npy` shape (frames,) or (8, frames). */
  readonly codebooks: 1 | 8;
  readonly dtype: NpyWriteDtype;
  /** Extension of the (notional) audio file in `audio_files/`. */
  readonly ext: string;
  readonly source: readonly string[];
  readonly style: IdStyle;
  readonly tag: string;
}

type Row = readonly [folder: string, lang: SampleDataset['lang'], codebooks: 1 | 8, ext: string, source: string, style: IdStyle, tag: string];

// Datasets whose records carry several clips are 1-codebook, so examples stay ≲ 1,300 tokens.
const ROWS: readonly Row[] = [
  ['01_CommonVoice', 'en', 8, 'mp3', 'crowdsourced', 'flat', 'common_voice_'],
  ['02_Emilia', 'mix', 1, 'mp3', 'podcast,youtube', 'flat', 'B'],
  ['03_KeSpeech', 'zh', 8, 'wav', 'crowdsourced', 'spk', '1000'],
  ['04_TIMIT', 'en', 8, 'wav', 'studio', 'spk', 'DR'],
  ['05_SLURP', 'en', 8, 'flac', 'crowdsourced', 'flat', 'audio-'],
  ['06_Spoken-SQuAD', 'en', 8, 'wav', 'synthetic', 'flat', 'para'],
  ['07_ESD', 'mix', 1, 'wav', 'studio', 'spk', '00'],
  ['08_VoxCeleb1', 'en', 1, 'wav', 'youtube', 'spk', 'id10'],
  ['09_AMI', 'en', 8, 'wav', 'meeting', 'flat', 'ES2002-'],
  ['10_LibriMix', 'en', 1, 'wav', 'audiobook', 'libri', ''],
  ['11_ASVspoof2019', 'en', 8, 'flac', 'studio', 'flat', 'LA_T_'],
  ['12_MOBIPHONE', 'en', 8, 'wav', 'studio', 'flat', 'rec'],
  ['13_LibriTTS-R', 'en', 8, 'wav', 'audiobook', 'libri', ''],
  ['14_VCTK', 'en', 1, 'flac', 'studio', 'spk', 'p'],
  ['15_VoiceBank-DEMAND', 'en', 1, 'wav', 'studio', 'spk', 'p'],
  ['16_REVERB', 'en', 1, 'wav', 'studio', 'flat', 'c0'],
  ['17_DAPS', 'en', 1, 'wav', 'studio', 'spk', 'f'],
  ['18_TextrolSpeech', 'en', 8, 'wav', 'audiobook,studio', 'flat', 'ts'],
  ['19_CVSS', 'en', 1, 'mp3', 'crowdsourced', 'flat', 'common_voice_fr_'],
  ['20_MTG-Jamendo', 'en', 8, 'mp3', 'jamendo', 'flat', 'track_'],
  ['21_GiantSteps', 'en', 8, 'mp3', 'beatport', 'flat', 'gs'],
  ['22_NSynth', 'en', 8, 'wav', 'studio', 'flat', 'note-'],
  ['23_VocalSet', 'en', 8, 'wav', 'studio', 'spk', 'singer'],
  ['24_CBFdataset', 'zh', 1, 'wav', 'studio', 'spk', 'player'],
  ['25_FMA', 'en', 8, 'mp3', 'freemusicarchive', 'flat', ''],
  ['26_Ballroom', 'en', 1, 'wav', 'radio', 'flat', 'Albums-'],
  ['27_Isophonics', 'en', 8, 'wav', 'cd', 'flat', 'iso'],
  ['28_Slakh2100', 'en', 1, 'flac', 'synthetic', 'flat', 'Track'],
  ['29_MIR-ST500', 'zh', 8, 'mp3', 'youtube', 'flat', 'st'],
  ['30_GTZAN', 'en', 1, 'wav', 'cd,radio', 'flat', 'gtzan'],
  ['31_Emotify', 'en', 1, 'mp3', 'unknown', 'flat', 'emo'],
  ['32_MusicCaps', 'en', 8, 'wav', 'youtube', 'yt', ''],
  ['33_MedleyDB', 'en', 1, 'wav', 'studio', 'flat', 'MDB'],
  ['34_MUSDB18', 'en', 1, 'wav', 'studio', 'flat', 'mus'],
  ['35_MusicBench', 'en', 1, 'wav', 'youtube', 'yt', ''],
  ['36_DALI', 'en', 8, 'mp3', 'youtube', 'flat', 'dali'],
  ['37_Opencpop', 'zh', 8, 'wav', 'studio', 'flat', 'cp'],
  ['38_OpenSinger', 'zh', 1, 'wav', 'studio', 'spk', 'singer'],
  ['39_AudioSet', 'en', 1, 'wav', 'youtube', 'yt', ''],
  ['40_URBAN-SED', 'en', 8, 'wav', 'freesound', 'flat', 'soundscape_'],
  ['41_AudioSet-Strong', 'en', 8, 'wav', 'youtube', 'yt', ''],
  ['42_TAU-Urban-Acoustic-Scenes', 'en', 8, 'wav', 'field-recording', 'flat', 'scene-'],
  ['43_AudioCaps', 'en', 8, 'wav', 'youtube', 'yt', ''],
  ['44_Clotho-AQA', 'en', 8, 'wav', 'freesound', 'flat', 'clotho'],
  ['45_FakeSound', 'en', 8, 'wav', 'synthetic', 'flat', 'fake'],
  ['46_AVA-Speech', 'en', 8, 'wav', 'movies', 'yt', ''],
  ['47_MUSAN', 'en', 8, 'wav', 'freesound,librivox', 'flat', 'musan-'],
  ['48_ESC-50', 'en', 1, 'wav', 'freesound', 'flat', 'esc'],
  ['49_WavCaps', 'en', 1, 'flac', 'freesound,bbc-sound-effects', 'flat', 'wc'],
  ['50_FSD50K', 'en', 1, 'wav', 'freesound', 'flat', ''],
  ['51_AudioTime', 'en', 8, 'wav', 'synthetic', 'flat', 'at'],
  ['52_VGGSound', 'en', 1, 'mp3', 'youtube', 'yt', ''],
];

const DTYPES: readonly NpyWriteDtype[] = ['<i2', '<u2', '<i4', '<i8'];

export const SAMPLE_DATASETS: readonly SampleDataset[] = ROWS.map(([folder, lang, codebooks, ext, source, style, tag]) => {
  const task = AUDIO_FLAN_TASKS.find((t) => t.dataset === folder);
  if (!task) throw new Error(`sample dataset ${folder} has no task in the catalog`);
  const nn = Number(folder.slice(0, 2));
  const dtype = DTYPES[nn % DTYPES.length] as NpyWriteDtype;
  return { folder, domain: task.domain, lang, codebooks, dtype, ext, source: source.split(','), style, tag };
});

const BY_FOLDER = new Map(SAMPLE_DATASETS.map((d) => [d.folder, d]));

export function sampleDataset(folder: string): SampleDataset {
  const d = BY_FOLDER.get(folder);
  if (!d) throw new Error(`unknown sample dataset ${folder}`);
  return d;
}

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

function localName(ds: SampleDataset, index: number, key: number, speaker: number, seedKey: number): [id: string, rel: string] {
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
  const frames = 25 + (hashInts(key, 12) % 126);
  const [local, rel] = localName(ds, index, key, speaker, hashInts(seedKey, nn));
  return {
    ds, index, key, spkKey, speaker, lang, frames,
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
  const n = clip.ds.codebooks * clip.frames;
  const codes = new Int32Array(n);
  const rng = new Rng(clip.key, 99);
  for (let i = 0; i < n; i++) codes[i] = rng.u32() & 1023;
  return { codes, shape: clip.ds.codebooks === 1 ? [clip.frames] : [clip.ds.codebooks, clip.frames] };
}

/** Duration in seconds at 50 frames per second. */
export function clipSeconds(clip: Clip): number {
  return clip.frames / 50;
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
