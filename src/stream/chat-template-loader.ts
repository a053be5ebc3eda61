import { FailedPreconditionError } from '../errors.js';
import { TOKENIZER_FILE } from '../index/format.js';
import type { IndexReader } from '../index/index-reader.js';
import { ChatTemplate } from '../tokenize/chat-template.js';
import { TextTokenizer } from '../tokenize/text-tokenizer.js';

/**
 * The template from the pieces the indexer tokenized into the manifest. Parsing the index's
 * tokenizer.json takes over a second (most of opening an index), so it is loaded, and checked
 * against the manifest, only when a system prompt needs tokenizing.
 */
export async function loadChatTemplate(reader: IndexReader, systemPrompt: string): Promise<ChatTemplate> {
  const { template, vocab } = reader.manifest;
  if (systemPrompt === '') return ChatTemplate.fromPieces(template, vocab.special);
  // Read through the index's storage: the index may be on object storage.
  const tok = TextTokenizer.fromJson(
    reader.storage.describe(TOKENIZER_FILE),
    reader.storage.readFile(TOKENIZER_FILE).toString('utf8'),
  );
  if (tok.fingerprint !== vocab.tokenizerFingerprint) {
    throw new FailedPreconditionError(
      'tokenizer_mismatch',
      `the tokenizer ${tok.name} differs from the one the index was built with; rebuild the index`,
    );
  }
  return ChatTemplate.fromPieces(template, vocab.special, await tok.encode(systemPrompt));
}
