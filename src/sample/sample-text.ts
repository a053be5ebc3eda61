/**
 * Word banks and sentence generators for the synthetic sample corpus (English and Chinese), and
 * the small pickers its templates share. Everything is driven by an explicit Rng, so text is
 * deterministic for a seed. The label sets of each domain live in sample-labels-*.ts.
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
