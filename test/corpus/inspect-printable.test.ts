import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildIndex } from '../../src/index/build-index.js';
import { printable } from '../../src/cli/format-table.js';
import { shardPath, writeShard } from '../helpers/tiny-corpus.js';
import { CLI } from '../helpers/cli.js';

/**
 * Task and dataset names come from the corpus, which may be anyone's: `inspect` writes them to a
 * terminal, so a control character in one (an ANSI escape, a carriage return, a newline) must be
 * shown as text, never acted on, and must not break the table's lines.
 */
describe('inspect escapes control characters from the corpus', () => {
  const base = mkdtempSync(join(tmpdir(), 'flanstream-inspect-ctl-'));
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  it('printable writes C0, DEL and C1 characters as \\xNN and leaves other text alone', () => {
    expect(printable('a\u001b[31mb\rc\nd\te\u007f\u009bé✓')).toBe('a\\x1b[31mb\\x0dc\\x0ad\\x09e\\x7f\\x9bé✓');
  });

  it('a task named with an ANSI escape and a newline is printed escaped, one table row per task', () => {
    const corpus = join(base, 'corpus');
    const evil = 'Red\u001b[31m\u001b]0;pwned\u0007Row\nBreak';
    writeShard(
      corpus,
      shardPath('01_Evil\u001b[2J', 'part-0.jsonl'),
      Array.from({ length: 4 }, (_, k) => ({ uuid: `e-${k}`, major: 'TextQA', minor: evil })),
    );
    writeShard(
      corpus,
      shardPath('02_Plain', 'part-0.jsonl'),
      Array.from({ length: 4 }, (_, k) => ({ uuid: `p-${k}`, major: 'TextQA', minor: 'Trivia' })),
    );
    return buildIndex({ corpus, out: join(base, 'index'), workers: 1 }).then(() => {
      const r = spawnSync(process.execPath, [CLI, 'inspect', join(base, 'index')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      // Nothing but newlines is a control character in what reaches the terminal.
      // eslint-disable-next-line no-control-regex
      expect(r.stdout.replace(/\n/g, '')).not.toMatch(/[\u0000-\u001f\u007f-\u009f]/);
      expect(r.stdout).toContain('Red\\x1b[31m\\x1b]0;pwned\\x07Row\\x0aBreak');
      expect(r.stdout).toContain('01_Evil\\x1b[2J');
      // The two tasks are two rows of the task table: the newline in the name did not add one.
      const table = r.stdout.split('\n\n')[0]!.split('\n');
      expect(table.filter((l) => l.startsWith('speech')).length).toBe(2);
    });
  });
});
