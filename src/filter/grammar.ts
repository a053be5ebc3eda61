import { InvalidArgumentError } from '../errors.js';

/**
 * The grammar of a stream filter (`StreamSpec.filter`): a hand-written tokenizer and a
 * recursive-descent parser that turn the text into a typed tree. The text is data: it is never
 * evaluated as code, every field and literal is checked against FIELDS here, and anything else is
 * an InvalidArgumentError naming the position (1-based character) of what is wrong.
 *
 *   expr    := and ("or" and)*
 *   and     := unary ("and" unary)*
 *   unary   := "not" unary | "(" expr ")" | compare
 *   compare := FIELD ("==" | "!=" | "<" | "<=" | ">" | ">=") literal
 *            | FIELD "in" ("[" | "(") literal ("," literal)* ("]" | ")")
 *   literal := "double-quoted string" | number | true | false
 */

/** What a field holds: its literals must be of that kind; `set` fields hold several strings per record. */
export type FieldKind = 'string' | 'set' | 'number' | 'bool';

/** The fields a filter may name, with their kinds. */
export const FIELDS = {
  domain: 'string',
  task: 'string',
  dataset: 'string',
  ug: 'string',
  unseen: 'bool',
  source: 'set',
  split: 'set',
  text_tokens: 'number',
  audio_tokens: 'number',
  audio_seconds: 'number',
  clips: 'number',
} as const satisfies Record<string, FieldKind>;
export type Field = keyof typeof FIELDS;

export const COMPARISONS = ['==', '!=', '<', '<=', '>', '>='] as const;
export type Comparison = (typeof COMPARISONS)[number];
export type Literal = string | number | boolean;

export type FilterNode =
  | { readonly kind: 'or' | 'and'; readonly items: readonly FilterNode[] }
  | { readonly kind: 'not'; readonly item: FilterNode }
  | { readonly kind: 'compare'; readonly field: Field; readonly op: Comparison; readonly value: Literal }
  | { readonly kind: 'in'; readonly field: Field; readonly values: readonly Literal[] };

/** Longest filter accepted (characters), and deepest nesting of parentheses and `not`. */
export const MAX_FILTER_CHARS = 4096;
export const MAX_FILTER_DEPTH = 64;

type Token =
  | { readonly type: 'word'; readonly text: string; readonly at: number }
  | { readonly type: 'string'; readonly text: string; readonly at: number }
  | { readonly type: 'number'; readonly value: number; readonly text: string; readonly at: number }
  | { readonly type: 'punct'; readonly text: string; readonly at: number }
  | { readonly type: 'end'; readonly text: ''; readonly at: number };

const PUNCT = ['==', '!=', '<=', '>=', '<', '>', '(', ')', '[', ']', ','] as const;
const KEYWORDS = new Set(['and', 'or', 'not', 'in', 'true', 'false']);

function fail(at: number, message: string): never {
  throw new InvalidArgumentError('filter', `at character ${at + 1}: ${message}`);
}

/** Splits the text into tokens; positions are 0-based offsets. */
export function tokenize(text: string): Token[] {
  if (text.length > MAX_FILTER_CHARS)
    fail(MAX_FILTER_CHARS, `the filter is ${text.length} characters long; at most ${MAX_FILTER_CHARS} are accepted`);
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '"') {
      const at = i;
      let s = '';
      for (i++; ; i++) {
        if (i >= text.length) fail(at, 'unterminated string (a string literal ends with a double quote)');
        const d = text[i]!;
        if (d === '"') break;
        if (d === '\\') {
          const e = text[++i];
          if (e !== '"' && e !== '\\') fail(i - 1, 'only \\" and \\\\ may be escaped in a string');
          s += e;
        } else {
          s += d;
        }
      }
      i++;
      out.push({ type: 'string', text: s, at });
    } else if (
      /[0-9]/.test(c) ||
      (c === '-' && /[0-9.]/.test(text[i + 1] ?? '')) ||
      (c === '.' && /[0-9]/.test(text[i + 1] ?? ''))
    ) {
      const m = /^-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i, i + 64))!;
      if (/[A-Za-z_0-9.]/.test(text[i + m[0].length] ?? ''))
        fail(i, `malformed number "${text.slice(i, i + m[0].length + 1)}"`);
      out.push({ type: 'number', value: Number(m[0]), text: m[0], at: i });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z_0-9]*/.exec(text.slice(i, i + 128))!;
      out.push({ type: 'word', text: m[0], at: i });
      i += m[0].length;
    } else {
      const p = PUNCT.find((q) => text.startsWith(q, i));
      if (!p) fail(i, `unexpected character ${JSON.stringify(c)}`);
      out.push({ type: 'punct', text: p, at: i });
      i += p.length;
    }
  }
  out.push({ type: 'end', text: '', at: text.length });
  return out;
}

const describe = (t: Token): string => (t.type === 'end' ? 'the end of the filter' : `"${t.text}"`);

class Parser {
  private pos = 0;
  private depth = 0;
  constructor(private readonly tokens: readonly Token[]) {}

  private get next(): Token {
    return this.tokens[this.pos]!;
  }

  private isWord(w: string): boolean {
    return this.next.type === 'word' && this.next.text === w;
  }

  private isPunct(p: string): boolean {
    return this.next.type === 'punct' && this.next.text === p;
  }

  parse(): FilterNode {
    const node = this.or();
    if (this.next.type !== 'end') fail(this.next.at, `expected "and", "or" or the end, found ${describe(this.next)}`);
    return node;
  }

  private or(): FilterNode {
    const items = [this.and()];
    while (this.isWord('or')) {
      this.pos++;
      items.push(this.and());
    }
    return items.length === 1 ? items[0]! : { kind: 'or', items };
  }

  private and(): FilterNode {
    const items = [this.unary()];
    while (this.isWord('and')) {
      this.pos++;
      items.push(this.unary());
    }
    return items.length === 1 ? items[0]! : { kind: 'and', items };
  }

  private unary(): FilterNode {
    if (++this.depth > MAX_FILTER_DEPTH) fail(this.next.at, `nested deeper than ${MAX_FILTER_DEPTH} levels`);
    let node: FilterNode;
    if (this.isWord('not')) {
      this.pos++;
      node = { kind: 'not', item: this.unary() };
    } else if (this.isPunct('(')) {
      this.pos++;
      node = this.or();
      if (!this.isPunct(')')) fail(this.next.at, `expected ")", found ${describe(this.next)}`);
      this.pos++;
    } else {
      node = this.compare();
    }
    this.depth--;
    return node;
  }

  private compare(): FilterNode {
    const t = this.next;
    if (t.type !== 'word' || KEYWORDS.has(t.text))
      fail(t.at, `expected a field name, "not" or "(", found ${describe(t)}`);
    if (!Object.hasOwn(FIELDS, t.text))
      fail(t.at, `unknown field "${t.text}" (fields: ${Object.keys(FIELDS).join(', ')})`);
    const field = t.text as Field;
    this.pos++;
    const op = this.next;
    if (op.type === 'word' && op.text === 'in') {
      this.pos++;
      const open = this.next;
      if (!(open.type === 'punct' && (open.text === '[' || open.text === '(')))
        fail(open.at, `expected "[" after "in", found ${describe(open)}`);
      this.pos++;
      const close = open.text === '[' ? ']' : ')';
      const values = [this.literal(field, op)];
      while (this.isPunct(',')) {
        this.pos++;
        values.push(this.literal(field, op));
      }
      if (!this.isPunct(close)) fail(this.next.at, `expected "," or "${close}", found ${describe(this.next)}`);
      this.pos++;
      return { kind: 'in', field, values };
    }
    if (op.type !== 'punct' || !(COMPARISONS as readonly string[]).includes(op.text))
      fail(op.at, `expected an operator (${COMPARISONS.join(' ')} in) after "${field}", found ${describe(op)}`);
    this.pos++;
    return { kind: 'compare', field, op: op.text as Comparison, value: this.literal(field, op) };
  }

  /** A literal of the field's kind, checked against the operator. */
  private literal(field: Field, op: Token): Literal {
    const t = this.next;
    const kind = FIELDS[field];
    const ordered = op.text === '<' || op.text === '<=' || op.text === '>' || op.text === '>=';
    if (ordered && kind !== 'number')
      fail(op.at, `"${op.text}" compares numbers; "${field}" is a ${kindName(kind)} field`);
    let value: Literal;
    if (t.type === 'string') value = t.text;
    else if (t.type === 'number') value = t.value;
    else if (t.type === 'word' && (t.text === 'true' || t.text === 'false')) value = t.text === 'true';
    else fail(t.at, `expected a value for "${field}", found ${describe(t)}`);
    const wanted = kind === 'set' ? 'string' : kind === 'bool' ? 'boolean' : kind;
    if (typeof value !== wanted)
      fail(t.at, `"${field}" is a ${kindName(kind)} field; ${describe(t)} is not a ${kindName(kind)} value`);
    this.pos++;
    return value;
  }
}

function kindName(kind: FieldKind): string {
  return kind === 'set' || kind === 'string' ? 'string' : kind === 'bool' ? 'true/false' : 'number';
}

/** The tree of a filter text; an empty (or blank) text is no filter (undefined). */
export function parseFilter(text: string): FilterNode | undefined {
  const tokens = tokenize(text);
  if (tokens.length === 1) return undefined;
  return new Parser(tokens).parse();
}

/** A filter's canonical text (one spacing, literals re-quoted): what a resume token carries and digests compare. */
export function formatFilter(node: FilterNode): string {
  const lit = (v: Literal): string => (typeof v === 'string' ? `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"` : String(v));
  const inner = (n: FilterNode, parent: 'or' | 'and' | 'not' | 'top'): string => {
    switch (n.kind) {
      case 'or':
      case 'and': {
        const s = n.items.map((i) => inner(i, n.kind)).join(` ${n.kind} `);
        return parent === 'top' || (parent === 'or' && n.kind === 'and') ? s : `(${s})`;
      }
      case 'not':
        return `not ${inner(n.item, 'not')}`;
      case 'compare':
        return `${n.field} ${n.op} ${lit(n.value)}`;
      case 'in':
        return `${n.field} in [${n.values.map(lit).join(', ')}]`;
    }
  };
  return inner(node, 'top');
}
