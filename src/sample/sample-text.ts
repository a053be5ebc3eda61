/**
 * Word banks, label sets and sentence generators for the synthetic sample corpus (English and
 * Chinese). Everything is driven by an explicit Rng, so text is deterministic for a seed.
 */
import type { Rng } from './sample-rng.js';

const EN_SUBJECTS = [
  'The old fisherman',
  'My grandmother',
  'A young engineer',
  'The committee',
  'Our neighbour',
  'The little girl',
  'The orchestra',
  'A tired traveller',
  'The school teacher',
  'His younger brother',
  'The captain',
  'Everyone in the village',
  'The new manager',
  'A curious student',
  'The baker',
  'Nobody',
] as const;
const EN_VERBS = [
  'carried',
  'remembered',
  'painted',
  'discussed',
  'repaired',
  'described',
  'found',
  'watched',
  'prepared',
  'questioned',
  'ignored',
  'admired',
  'collected',
  'measured',
  'opened',
  'followed',
] as const;
const EN_OBJECTS = [
  'the wooden box',
  'a letter from abroad',
  'the broken bicycle',
  'the map of the river',
  'a basket of apples',
  'the quiet garden',
  'the evening news',
  'a strange noise',
  'the last train',
  'the budget report',
  'an old photograph',
  'the silver key',
  'the cold coffee',
  'a long story',
  'the lighthouse',
  'the unfinished song',
] as const;
const EN_TAILS = [
  'before the storm arrived',
  'near the harbour',
  'in the middle of the night',
  'without saying a word',
  'after breakfast',
  'on the way home',
  'with great care',
  'for the third time this week',
  'under the bright lamp',
  'while the rain kept falling',
  'at the edge of the forest',
  'just in time',
  'as the sun went down',
  'in the small kitchen',
] as const;

const ZH_TIMES = [
  '今天早上',
  '昨天晚上',
  '下个星期',
  '去年夏天',
  '每天中午',
  '周末的时候',
  '刚才',
  '明天下午',
  '春节前后',
  '晚饭以后',
] as const;
const ZH_SUBJECTS = [
  '我们',
  '他',
  '她的妈妈',
  '老师',
  '这家公司',
  '小王',
  '大家',
  '我的朋友',
  '那位医生',
  '孩子们',
  '邻居',
  '经理',
] as const;
const ZH_PLACES = [
  '在公园里',
  '在图书馆',
  '在北京',
  '在地铁上',
  '在办公室',
  '在学校门口',
  '在海边',
  '在厨房里',
  '在会议室',
  '在老家',
] as const;
const ZH_VERBS = [
  '讨论了新的计划',
  '买了一些水果',
  '读完了那本书',
  '见到了老朋友',
  '准备了一顿丰盛的晚饭',
  '完成了所有的工作',
  '听了一场音乐会',
  '学习了新的技术',
  '拍了很多照片',
  '修好了那台电脑',
  '聊了很久的天',
  '种了几棵小树',
] as const;
const ZH_ENDS = ['。', '。', '。', '，大家都很高兴。', '，感觉非常不错。', '，然后就回家了。'] as const;

/** One English sentence, 6–18 words. */
export function enSentence(rng: Rng): string {
  const s = `${rng.pick(EN_SUBJECTS)} ${rng.pick(EN_VERBS)} ${rng.pick(EN_OBJECTS)}`;
  return rng.chance(0.75) ? `${s} ${rng.pick(EN_TAILS)}.` : `${s}.`;
}

/** One Chinese sentence. */
export function zhSentence(rng: Rng): string {
  const time = rng.chance(0.7) ? rng.pick(ZH_TIMES) : '';
  const place = rng.chance(0.6) ? rng.pick(ZH_PLACES) : '';
  return `${time}${rng.pick(ZH_SUBJECTS)}${place}${rng.pick(ZH_VERBS)}${rng.pick(ZH_ENDS)}`;
}

export function sentence(rng: Rng, lang: 'en' | 'zh'): string {
  return lang === 'zh' ? zhSentence(rng) : enSentence(rng);
}

/** Disfluent, conversational rendering of a sentence (spontaneous-style TTS input). */
export function spontaneous(rng: Rng, text: string, lang: 'en' | 'zh'): string {
  if (lang === 'zh')
    return `${rng.pick(['嗯，', '那个，', '就是说，', '呃，'])}${text.replace(/。$/, '')}${rng.pick(['吧。', '，对吧？', '。', '啊。'])}`;
  const words = text.split(' ');
  const at = 1 + rng.int(Math.max(1, words.length - 1));
  words.splice(at, 0, rng.pick(['um,', 'uh,', 'you know,', 'like,', 'I mean,']));
  const lead = rng.pick(['Well, ', 'So, ', 'Um, ', '']);
  const body = words.join(' ');
  return lead === '' ? body : `${lead}${body.charAt(0).toLowerCase()}${body.slice(1)}`;
}

// ---- label sets ----
export const GENDERS = ['male', 'female'] as const;
export const AGES = ['teens', 'twenties', 'thirties', 'forties', 'fifties', 'sixties', 'seventies'] as const;
export const EMOTIONS = ['neutral', 'happy', 'sad', 'angry', 'surprised'] as const;
export const EMOTIONS_ZH: Record<string, string> = {
  neutral: '中性',
  happy: '开心',
  sad: '悲伤',
  angry: '生气',
  surprised: '惊讶',
};
export const ACCENTS = [
  'United States English',
  'England English',
  'Indian English',
  'Australian English',
  'Canadian English',
  'Scottish English',
  'Irish English',
  'South African English',
] as const;
export const LANGUAGES = [
  'English',
  'Mandarin Chinese',
  'German',
  'French',
  'Spanish',
  'Italian',
  'Japanese',
  'Russian',
  'Portuguese',
  'Dutch',
  'Arabic',
  'Welsh',
] as const;
export const DIALECTS = [
  ['Southwestern Mandarin', '西南官话'],
  ['Zhongyuan Mandarin', '中原官话'],
  ['Northeastern Mandarin', '东北官话'],
  ['Ji-Lu Mandarin', '冀鲁官话'],
  ['Jiang-Huai Mandarin', '江淮官话'],
  ['Lan-Yin Mandarin', '兰银官话'],
  ['Jiao-Liao Mandarin', '胶辽官话'],
  ['Beijing Mandarin', '北京官话'],
] as const;
export const INTENTS = [
  'alarm_set',
  'alarm_query',
  'weather_query',
  'play_music',
  'calendar_set',
  'email_sendemail',
  'iot_hue_lightoff',
  'iot_cleaning',
  'transport_ticket',
  'news_query',
  'cooking_recipe',
  'takeaway_order',
  'datetime_query',
  'qa_factoid',
] as const;
export const DEVICES = [
  'Apple iPhone 5',
  'Samsung Galaxy S4',
  'HTC One',
  'LG G2',
  'Nokia Lumia 920',
  'Sony Xperia Z',
  'Huawei Ascend P6',
  'Motorola Moto G',
  'Apple iPad Air',
  'Asus Nexus 7',
] as const;
export const VOCODERS = [
  'WaveNet',
  'WORLD',
  'Griffin-Lim',
  'HiFi-GAN',
  'MelGAN',
  'Parallel WaveGAN',
  'WaveGlow',
  'WaveRNN',
  'bona fide (no vocoder)',
] as const;
export const PHONES = [
  'h#',
  'sh',
  'iy',
  'hv',
  'ae',
  'dcl',
  'd',
  'y',
  'er',
  'aa',
  'r',
  'kcl',
  'k',
  's',
  'ux',
  'tcl',
  't',
  'en',
  'gcl',
  'g',
  'w',
  'ix',
  'ao',
  'l',
  'ow',
  'n',
  'm',
  'ih',
  'eh',
  'ah',
  'z',
  'dh',
  'f',
  'pau',
] as const;
export const PITCH_LEVELS = ['low', 'normal', 'high'] as const;
export const SPEEDS = ['slowly', 'at a normal pace', 'quickly'] as const;
export const ENERGIES = ['low', 'moderate', 'high'] as const;
export const SNRS = [-5, 0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20] as const;
export const SPEECH_LANGS_S2ST = ['French', 'German', 'Spanish', 'Italian', 'Catalan', 'Japanese', 'Russian'] as const;

export const GENRES = [
  'rock',
  'pop',
  'jazz',
  'classical',
  'electronic',
  'hip-hop',
  'folk',
  'blues',
  'reggae',
  'metal',
  'country',
  'ambient',
] as const;
export const MOODS = [
  'happy',
  'sad',
  'energetic',
  'calm',
  'dark',
  'romantic',
  'epic',
  'melancholic',
  'relaxing',
  'uplifting',
] as const;
export const TAGS = [
  'guitar',
  'piano',
  'drums',
  'synthesizer',
  'female vocals',
  'male vocals',
  'instrumental',
  'acoustic',
  'upbeat',
  'mellow',
  'bass',
  'strings',
  'lo-fi',
  'dance',
  'soundtrack',
  'violin',
] as const;
export const NOTE_NAMES = ['C', 'C#', 'D', 'D#', 'E', 'F', 'F#', 'G', 'G#', 'A', 'A#', 'B'] as const;
export const KEYS = NOTE_NAMES.flatMap((n) => [`${n} major`, `${n} minor`]);
export const SCALES = [
  'major',
  'natural minor',
  'harmonic minor',
  'melodic minor',
  'dorian',
  'phrygian',
  'lydian',
  'mixolydian',
  'major pentatonic',
  'minor pentatonic',
  'blues',
] as const;
export const NSYNTH_FAMILIES = [
  'bass',
  'brass',
  'flute',
  'guitar',
  'keyboard',
  'mallet',
  'organ',
  'reed',
  'string',
  'synth lead',
  'vocal',
] as const;
export const VOCAL_TECHNIQUES = [
  'belt',
  'breathy',
  'vocal fry',
  'inhaled singing',
  'lip trill',
  'spoken',
  'straight',
  'trill',
  'trillo',
  'vibrato',
  'messa di voce',
] as const;
export const PLAY_TECHNIQUES = [
  'vibrato',
  'tremolo',
  'trill',
  'flutter-tongue',
  'acciaccatura',
  'portamento',
  'glissando',
  'staccato',
] as const;
export const ARTISTS = [
  'The Velvet Lanterns',
  'Mira Okafor',
  'Northbound Static',
  'Lucía Ferrand',
  'Paper Harbour',
  'DJ Kestrel',
  'The Saltmarsh Trio',
  'Yuna Takeda',
  'Copper & Pine',
  'Hollow Meridian',
  'Ezra Quill',
  'Sundial Youth',
] as const;
export const CHORDS = [
  'C:maj',
  'G:maj',
  'A:min',
  'F:maj',
  'D:min',
  'E:min',
  'D:maj',
  'E:maj',
  'B:min',
  'A:maj',
  'G:7',
  'C:7',
  'F:min',
  'Bb:maj',
] as const;
export const MIX_INSTRUMENTS = [
  'piano',
  'bass',
  'drums',
  'electric guitar',
  'acoustic guitar',
  'strings',
  'synth pad',
  'organ',
  'brass',
  'flute',
] as const;
export const STEMS = ['vocals', 'drums', 'bass', 'other'] as const;
export const TEMPO_WORDS = ['slow', 'moderate', 'fast'] as const;

export const SOUND_EVENTS = [
  'Dog',
  'Speech',
  'Car',
  'Siren',
  'Music',
  'Rain',
  'Bird',
  'Door',
  'Footsteps',
  'Engine',
  'Baby cry',
  'Applause',
  'Laughter',
  'Water tap',
  'Wind',
  'Telephone',
  'Glass',
  'Train',
  'Cat',
  'Thunder',
] as const;
export const EVENT_PHRASES: Record<string, string> = {
  Dog: 'a dog barks',
  Speech: 'people are talking',
  Car: 'a car passes by',
  Siren: 'a siren wails',
  Music: 'music plays',
  Rain: 'rain falls steadily',
  Bird: 'birds chirp',
  Door: 'a door slams',
  Footsteps: 'footsteps approach',
  Engine: 'an engine idles',
  'Baby cry': 'a baby cries',
  Applause: 'a crowd applauds',
  Laughter: 'someone laughs',
  'Water tap': 'water runs from a tap',
  Wind: 'wind blows',
  Telephone: 'a telephone rings',
  Glass: 'glass shatters',
  Train: 'a train rumbles past',
  Cat: 'a cat meows',
  Thunder: 'thunder rolls in the distance',
};
export const URBAN_EVENTS = [
  'air_conditioner',
  'car_horn',
  'children_playing',
  'dog_bark',
  'drilling',
  'engine_idling',
  'gun_shot',
  'jackhammer',
  'siren',
  'street_music',
] as const;
export const SCENES = [
  'airport',
  'bus',
  'metro',
  'metro_station',
  'park',
  'public_square',
  'shopping_mall',
  'street_pedestrian',
  'street_traffic',
  'tram',
] as const;
export const SSMN = ['speech', 'silence', 'music', 'noise'] as const;

/** Pick `n` distinct items (n ≤ list length), in list order. */
export function pickDistinct<T>(rng: Rng, list: readonly T[], n: number): T[] {
  const idx = list.map((_, i) => i);
  rng.shuffle(idx);
  return idx
    .slice(0, Math.min(n, list.length))
    .sort((a, b) => a - b)
    .map((i) => list[i] as T);
}

/** Seconds with two decimals. */
export function secs(x: number): string {
  return x.toFixed(2);
}
