// Vocabulary subsets: a tokenizer folder with vocab_subset.json maps the base tokenizer's ids onto
// 0..n-1 (for models trained from scratch on one corpus); texts outside the corpus stay encodable
// through the byte-level alphabet, and decoding returns the same text as the full tokenizer.
import { copyFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { materializeTokenizer } from './materialize.js';
import { latentEndId, latentMarkerIds, padId } from './prompt.js';
import { VOCAB_SUBSET_FILE, byteLevelAlphabet, loadTokenizer, readVocabSubset, writeVocabSubset, type Tokenizer } from './tokenizer.js';

const CORPUS = ['What is 123 * 456?', '<think>', '</think>', '<<123*6=738>> <<123*50=6150>>', 'The answer is \\boxed{56088}.'];
const EXTRA = 'Zebras quietly juggle 98765 pineapples — naïve café ☕';

let full: Tokenizer;
let sub: Tokenizer;
let subDir: string;
let fullDir: string;
beforeAll(async () => {
  fullDir = materializeTokenizer('llama-3.2', mkdtempSync(join(tmpdir(), 'tok-full-'))).dir;
  full = await loadTokenizer(fullDir);
  subDir = mkdtempSync(join(tmpdir(), 'tok-sub-'));
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(fullDir, f), join(subDir, f));
  writeVocabSubset(subDir, full.subsetFor(CORPUS));
  sub = await loadTokenizer(subDir);
});

describe('vocabulary subset', () => {
  it('keeps the specials, the 256 byte characters and the corpus ids, in base order', () => {
    const ids = readVocabSubset(subDir) as number[];
    expect(sub.vocabSize).toBe(ids.length);
    expect(ids.length).toBeLessThan(1000);
    expect(ids.filter((b) => b >= 128000)).toHaveLength(256); // Llama-3.2's added tokens
    for (const ch of byteLevelAlphabet()) expect(ids).toContain(full.tokenToId(ch));
    for (const t of CORPUS) for (const b of full.encode(t)) expect(ids).toContain(b);
    for (let i = 0; i < ids.length; i++) expect(sub.baseId(i)).toBe(ids[i]);
  });

  it('encodes corpus texts to the same tokens as the full tokenizer, renumbered', () => {
    for (const t of CORPUS) expect(sub.encode(t).map((i) => sub.baseId(i))).toEqual(full.encode(t));
  });

  it('spells unseen tokens with byte-level characters and decodes back to the same text', () => {
    const ids = sub.encode(EXTRA);
    expect(ids.length).toBeGreaterThan(full.encode(EXTRA).length);
    for (const i of ids) expect(i).toBeLessThan(sub.vocabSize);
    expect(sub.decode(ids)).toBe(EXTRA);
    expect(sub.decode(sub.encode(CORPUS[3] as string))).toBe(CORPUS[3]);
  });

  it('maps special ids, markers and the pad rule into the subset', () => {
    expect(sub.baseId(sub.eosId)).toBe(full.eosId);
    expect(sub.baseId(sub.bosId as number)).toBe(full.bosId);
    expect(sub.baseId(padId(sub))).toBe(padId(full));
    expect(latentMarkerIds(sub).endThink.map((i) => sub.baseId(i))).toEqual(latentMarkerIds(full).endThink);
    expect(sub.baseId(latentEndId(sub))).toBe(524);
    expect(sub.idToToken(sub.tokenToId('Ġis') as number)).toBe('Ġis');
    expect(sub.tokenToId('Ġpineapples')).toBeUndefined();
  });

  it('rejects bad subset files with one-line errors naming the file', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'tok-bad-'));
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(fullDir, f), join(bad, f));
    writeFileSync(join(bad, VOCAB_SUBSET_FILE), JSON.stringify({ format: 'latent-sft/vocab-subset@1', size: 2, ids: [5, 3] }));
    await expect(loadTokenizer(bad)).rejects.toThrow(/vocab_subset\.json.*ids\[1\].*strictly increasing/);
    writeFileSync(join(bad, VOCAB_SUBSET_FILE), JSON.stringify({ format: 'latent-sft/vocab-subset@1', size: 2, ids: [3, 5] }));
    await expect(loadTokenizer(bad)).rejects.toThrow(/vocab_subset\.json.*byte-level character/);
    writeFileSync(join(bad, VOCAB_SUBSET_FILE), '{');
    await expect(loadTokenizer(bad)).rejects.toThrow(/vocab_subset\.json.*not valid JSON/);
  });

  it('grows a subset with added special tokens', async () => {
    const { tokenizer, ids } = await sub.addSpecialTokens(['<|compress_token|>'], mkdtempSync(join(tmpdir(), 'tok-add-')));
    expect(ids).toEqual([sub.vocabSize]);
    expect(tokenizer.vocabSize).toBe(sub.vocabSize + 1);
    expect(tokenizer.baseId(ids[0] as number)).toBe(128256);
    expect(tokenizer.encode('a<|compress_token|>b').map((i) => tokenizer.baseId(i))).toContain(128256);
  });
});
