import type { RawHeldout } from '../../src/stream/stream-request.js';
import type { IndexFacts } from './index-facts.js';

/** A held-out set as the test knows it: from config/heldout/<name>.yaml or inline. */
export interface HeldoutCase {
  readonly label: string;
  readonly raw: RawHeldout;
  readonly selectors: readonly string[];
  readonly unseenFlag: boolean;
  readonly excludeSharedAudio: boolean;
}

export const named = (
  name: string,
  selectors: string[],
  unseenFlag: boolean,
  excludeSharedAudio: boolean,
): HeldoutCase => ({ label: name, raw: { name }, selectors, unseenFlag, excludeSharedAudio });

export const inline = (
  label: string,
  selectors: string[],
  unseenFlag: boolean,
  excludeSharedAudio: boolean,
): HeldoutCase => ({
  label,
  raw: { inline: true, selectors, unseenFlag, excludeSharedAudio },
  selectors,
  unseenFlag,
  excludeSharedAudio,
});

/** The sets of config/heldout/ (as their YAML files say) and a few inline ones. */
export const HELDOUT_CASES: readonly HeldoutCase[] = [
  named('unseen-flag', [], true, false),
  named('music-reasoning', ['music/Single Music Reasoning', 'music/Multiple Music Reasoning'], false, false),
  named('loco-speech-caption', ['speech/Speech Caption'], false, true),
  named('loco-music-caption', ['music/Music Caption'], false, true),
  named('loco-audio-caption', ['audio/Audio Caption'], false, true),
  inline(
    'inline: ASR minor + Global MIR major + unseen',
    ['speech/Speech Recognition/ASR', 'music/Global MIR'],
    true,
    false,
  ),
  inline('inline: whole audio domain, shared audio excluded', ['audio'], false, true),
];

/** Held-out task ids, computed from the records: selectors by component prefix, plus any task with an unseen record. */
export function heldoutTasks(facts: IndexFacts, c: HeldoutCase): Set<number> {
  const tasks = facts.tasksUnder(c.selectors);
  if (c.unseenFlag) for (const r of facts.byUuid.values()) if (r.unseen) tasks.add(r.task);
  return tasks;
}

/** Train records that share any clip (audio id or codes) with any record (any split) of a held-out task. */
export function sharingAudio(facts: IndexFacts, held: ReadonlySet<number>): Set<string> {
  const ids = new Set<string>();
  for (const r of facts.byUuid.values()) if (held.has(r.task)) for (const s of r.spans) ids.add(s.id).add(s.key);
  const out = new Set<string>();
  for (const r of facts.byUuid.values()) {
    if (!held.has(r.task) && (r.splits & 1) !== 0 && r.spans.some((s) => ids.has(s.id) || ids.has(s.key)))
      out.add(r.uuid);
  }
  return out;
}
