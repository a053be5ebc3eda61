import { describe, expect, it } from 'vitest';
import { InvalidArgumentError } from '../../src/errors.js';
import { compileFilter, type FilterRecord } from '../../src/filter/evaluate.js';
import { formatFilter, MAX_FILTER_CHARS, parseFilter } from '../../src/filter/grammar.js';

const record: FilterRecord = {
  domain: 'speech',
  task: 'speech/Speech Recognition/ASR',
  dataset: '07_common_voice',
  ug: 'understanding',
  unseen: false,
  source: ['youtube', 'microphone'],
  split: ['train', 'dev'],
  text_tokens: 40,
  audio_tokens: 1502,
  audio_seconds: 30,
  clips: 1,
};

const keeps = (text: string, r: FilterRecord = record): boolean => compileFilter(parseFilter(text)!)(r);

/** The InvalidArgumentError a text raises. */
function errorOf(text: string): InvalidArgumentError {
  try {
    parseFilter(text);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error(`no error for ${text}`);
}

describe('filter grammar', () => {
  it('evaluates every operator on every kind of field', () => {
    expect(keeps('ug == "understanding" and audio_seconds <= 30 and source != "synthetic"')).toBe(true);
    expect(keeps('audio_seconds < 30')).toBe(false);
    expect(keeps('audio_seconds >= 30 and text_tokens > 39 and clips == 1 and audio_tokens != 0')).toBe(true);
    expect(keeps('text_tokens > 40')).toBe(false);
    expect(keeps('source == "youtube"')).toBe(true);
    expect(keeps('source != "youtube"')).toBe(false);
    expect(keeps('source in ["a", "microphone"]')).toBe(true);
    expect(keeps('source in ("a", "b")')).toBe(false);
    expect(keeps('split == "dev" and not split == "test"')).toBe(true);
    expect(keeps('unseen == false and unseen != true')).toBe(true);
    expect(keeps('domain in ["music", "audio"] or dataset == "07_common_voice"')).toBe(true);
    expect(keeps('task == "speech/Speech Recognition/ASR"')).toBe(true);
    expect(keeps('clips in [0, 2]')).toBe(false);
  });

  it('binds not tighter than and, and tighter than or; parentheses regroup', () => {
    // false or (true and true) = true; (false or true) and false = false
    expect(keeps('domain == "music" or clips == 1 and unseen == false')).toBe(true);
    expect(keeps('(domain == "music" or clips == 1) and unseen == true')).toBe(false);
    expect(keeps('not domain == "music" and clips == 1')).toBe(true);
    expect(keeps('not (domain == "speech" and clips == 1)')).toBe(false);
  });

  it('formats a canonical text that parses to the same tree', () => {
    const text = '  not(ug=="generation"  or clips>=2) and (source in ["a\\"b"] or audio_seconds<=.5)';
    const tree = parseFilter(text)!;
    const canon = formatFilter(tree);
    expect(canon).toBe('not (ug == "generation" or clips >= 2) and (source in ["a\\"b"] or audio_seconds <= 0.5)');
    expect(parseFilter(canon)).toEqual(tree);
    expect(parseFilter('   ')).toBeUndefined();
  });

  it('points at the position of each error', () => {
    const cases: [string, number, RegExp][] = [
      ['durationn < 3', 1, /unknown field "durationn"/],
      ['ug == "generation" and audio_seconds == "x"', 41, /"audio_seconds" is a number field/],
      ['ug == "generation', 7, /unterminated string/],
      ['domain < "speech"', 8, /"<" compares numbers; "domain" is a string field/],
      ['unseen == 1', 11, /true\/false/],
      ['(clips == 1', 12, /expected "\)", found the end/],
      ['clips == 1 clips', 12, /expected "and", "or" or the end/],
      ['clips = 1', 7, /unexpected character "="/],
      ['clips in [1, 2', 15, /expected "," or "\]"/],
      ['and clips == 1', 1, /expected a field name/],
      ['clips == 1abc', 10, /malformed number/],
      ['source == "a\\n"', 13, /may be escaped/],
    ];
    for (const [text, at, what] of cases) {
      const err = errorOf(text);
      expect(err.context.field).toBe('filter');
      expect(err.message, text).toMatch(what);
      expect(err.message, text).toContain(`at character ${at}:`);
    }
  });

  it('refuses an over-long text and deep nesting without recursing through them', () => {
    const long = errorOf(`clips == 1 or ${'x'.repeat(100 * 1024)}`);
    expect(long.message).toContain(`at character ${MAX_FILTER_CHARS + 1}:`);
    expect(long.message).toContain('at most 4096');
    expect(errorOf(`${'('.repeat(2000)}clips == 1${')'.repeat(2000)}`).message).toMatch(/nested deeper than 64/);
    expect(errorOf(`${'not '.repeat(1000)}clips == 1`).message).toMatch(/nested deeper than 64/);
  });
});
