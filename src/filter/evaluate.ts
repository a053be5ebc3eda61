import type { Comparison, Field, FilterNode, Literal } from './grammar.js';

/** One record as a filter sees it: every field of the grammar, `source` and `split` as the record's lists. */
export interface FilterRecord {
  domain: string;
  task: string;
  dataset: string;
  ug: string;
  unseen: boolean;
  source: readonly string[];
  split: readonly string[];
  text_tokens: number;
  audio_tokens: number;
  audio_seconds: number;
  clips: number;
}

export type FilterPredicate = (r: FilterRecord) => boolean;

const ORDER: Record<Comparison, (a: number, b: number) => boolean> = {
  '==': (a, b) => a === b,
  '!=': (a, b) => a !== b,
  '<': (a, b) => a < b,
  '<=': (a, b) => a <= b,
  '>': (a, b) => a > b,
  '>=': (a, b) => a >= b,
};

/**
 * A parsed filter as a predicate (closures over the tree; no code is generated from the text).
 * A list field (`source`, `split`) equals a value when the record's list holds it, differs when
 * it does not, and is `in` a list when they share a value.
 */
export function compileFilter(node: FilterNode): FilterPredicate {
  switch (node.kind) {
    case 'or': {
      const items = node.items.map(compileFilter);
      return (r) => items.some((p) => p(r));
    }
    case 'and': {
      const items = node.items.map(compileFilter);
      return (r) => items.every((p) => p(r));
    }
    case 'not': {
      const item = compileFilter(node.item);
      return (r) => !item(r);
    }
    case 'in': {
      const values = new Set<Literal>(node.values);
      const field = node.field;
      return (r) => {
        const v = r[field];
        return Array.isArray(v) ? v.some((x) => values.has(x as string)) : values.has(v as Literal);
      };
    }
    case 'compare':
      return compare(node.field, node.op, node.value);
  }
}

function compare(field: Field, op: Comparison, value: Literal): FilterPredicate {
  if (typeof value === 'number') {
    const test = ORDER[op];
    return (r) => test(r[field] as number, value);
  }
  const eq = op === '==';
  return (r) => {
    const v = r[field];
    const has = Array.isArray(v) ? v.includes(value) : v === value;
    return has === eq;
  };
}
