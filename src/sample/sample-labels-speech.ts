/**
 * Label sets of the sample corpus's speech tasks (speaker traits, languages, intents, devices,
 * vocoders, phones) and the speaker traits a clip is given from them, shared by the recognition
 * and generation templates.
 */
import { attr, speakerAttr } from './sample-datasets.js';
import type { Clip } from './sample-datasets.js';

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

export const gender = (c: Clip): string => speakerAttr(c, 'gender', GENDERS);
export const emotion = (c: Clip): string => attr(c, 'emotion', EMOTIONS);
export const speakerCaption = (c: Clip): string =>
  `A ${gender(c)} speaker with ${attr(c, 'pitch', PITCH_LEVELS)} pitch speaks ${attr(c, 'speed', SPEEDS)} ` +
  `with ${attr(c, 'energy', ENERGIES)} energy, sounding ${emotion(c)}.`;
