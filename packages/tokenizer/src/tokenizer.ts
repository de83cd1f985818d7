// A thin typed wrapper over a transformers.js tokenizer loaded from a local folder, plus
// addSpecialTokens, which writes a new folder with extra added tokens (as HF's
// `tokenizer.add_special_tokens({'additional_special_tokens': [...]})` + `save_pretrained` would), so
// that both transformers.js and HF `AutoTokenizer` load the grown vocabulary.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inputError, writeFileAtomic } from '@latent-sft/core';
import { autoTokenizerFromDir, type PreTrainedTokenizer } from './hf.js';
import { subsetIds } from './subset-ids.js';

/** Prompt family, detected from the vocabulary's special tokens. */
export type TokenizerFamily = 'llama' | 'qwen';

/** Options of Tokenizer.encode. */
export interface EncodeOptions {
  /** Add the template's special tokens (BOS for Llama). Latent-SFT never does: default false. */
  addSpecialTokens?: boolean;
}

/** Options of Tokenizer.decode. */
export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

/** A chat message for applyChatTemplate. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

/** A tokenizer loaded from a folder with tokenizer.json and tokenizer_config.json. */
export class Tokenizer {
  /** Number of ids (the largest id + 1), added tokens included: 128256 for Llama-3.2; a subset's size when subset. */
  readonly vocabSize: number;
  readonly family: TokenizerFamily;
  readonly eosToken: string;
  readonly eosId: number;
  /** BOS id, or null when the tokenizer has none (Qwen). */
  readonly bosId: number | null;
  /** The config's pad token id, falling back to EOS as HF does (see prompt.ts padId for Latent-SFT's rule). */
  readonly configPadId: number;
  /** The base tokenizer's ids of a vocabulary subset (index = our id), or null for the full vocabulary. */
  readonly subset: readonly number[] | null;
  private readonly idToTokenTable: string[];
  /** base id → our id (subset only). */
  private readonly fromBase: Map<number, number> | null;

  private constructor(
    /** Absolute path of the folder. */
    readonly dir: string,
    private readonly hf: PreTrainedTokenizer,
    private readonly vocab: Map<string, number>,
    subset: readonly number[] | null,
  ) {
    let max = -1;
    for (const id of vocab.values()) if (id > max) max = id;
    const baseSize = max + 1;
    this.idToTokenTable = new Array<string>(baseSize);
    for (const [tok, id] of vocab) this.idToTokenTable[id] = tok;
    if (vocab.has('<|eot_id|>') && vocab.has('<|end_of_text|>')) this.family = 'llama';
    else if (vocab.has('<|im_start|>') && vocab.has('<|im_end|>')) this.family = 'qwen';
    else throw inputError({ file: join(dir, 'tokenizer.json') }, 'neither a Llama-3 nor a Qwen vocabulary');
    this.subset = subset;
    this.fromBase = subset === null ? null : new Map(subset.map((b, i) => [b, i]));
    this.vocabSize = subset === null ? baseSize : subset.length;
    if (subset !== null) checkSubset(subset, baseSize, vocab, join(dir, VOCAB_SUBSET_FILE));
    const eos = hf.eos_token;
    const eosBase = eos === null || eos === undefined ? undefined : vocab.get(eos);
    const eosId = eosBase === undefined ? undefined : this.fromBase === null ? eosBase : this.fromBase.get(eosBase);
    if (eos === null || eos === undefined || eosId === undefined) {
      throw inputError({ file: join(dir, 'tokenizer_config.json'), field: 'eos_token' }, 'missing or not in the vocabulary');
    }
    this.eosToken = eos;
    this.eosId = eosId;
    const bos = hf.bos_token;
    this.bosId = bos === null || bos === undefined ? null : (this.tokenToId(bos) ?? null);
    const pad = hf.pad_token_id;
    this.configPadId = pad === null || pad === undefined ? eosId : this.fromBase === null ? pad : (this.fromBase.get(pad) ?? eosId);
  }

  /** Loads `dir` with transformers.js AutoTokenizer in local-only mode (and its vocab_subset.json if any). */
  static async load(dir: string): Promise<Tokenizer> {
    const abs = resolve(dir);
    const json = join(abs, 'tokenizer.json');
    const config = join(abs, 'tokenizer_config.json');
    // A missing, truncated or hand-edited file: one line naming it (transformers.js would throw a bare
    // SyntaxError), tokenizer.json's problem first. tokenizer.json (9 MB for Llama-3.2) is parsed here
    // only when the config or transformers.js (which parses it anyway) fails: a file transformers.js
    // loads is a JSON object.
    if (!existsSync(json)) throw notFound(json);
    try {
      checkJsonObject(config);
    } catch (e) {
      checkJsonObject(json);
      throw e;
    }
    let hf: Awaited<ReturnType<typeof autoTokenizerFromDir>>;
    try {
      hf = await autoTokenizerFromDir(abs);
    } catch (e) {
      checkJsonObject(json);
      throw inputError({ file: json }, `not a loadable tokenizer (${(e as Error).message.split('\n')[0]})`);
    }
    return new Tokenizer(abs, hf, hf.get_vocab(), readVocabSubset(abs));
  }

  /** The base tokenizer's id of our id (the id itself for the full vocabulary). */
  baseId(id: number): number {
    if (this.subset === null) return id;
    const b = this.subset[id];
    if (b === undefined) throw new Error(`id ${id} is outside the vocabulary subset [0, ${this.vocabSize})`);
    return b;
  }

  /** Our ids of base ids; a base id outside the subset is spelled with its byte-level characters. */
  private fromBaseIds(ids: readonly number[]): number[] {
    const map = this.fromBase;
    if (map === null) return [...ids];
    return subsetIds(
      ids,
      map,
      (b) => this.idToTokenTable[b],
      (t) => this.vocab.get(t),
    );
  }

  /** Token ids of `text`; no BOS unless addSpecialTokens. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.fromBaseIds(this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false }));
  }

  /** Text of `ids` (clean-up of tokenization spaces as the tokenizer_config says, like HF). */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`decode: id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
    }
    const base = this.subset === null ? [...ids] : ids.map((id) => this.subset?.[id] as number);
    return this.hf.decode(base, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** The id of a vocabulary entry (byte-level form, e.g. 'Ġworld'), or undefined (also when outside a subset). */
  tokenToId(token: string): number | undefined {
    const b = this.vocab.get(token);
    if (b === undefined || this.fromBase === null) return b;
    return this.fromBase.get(b);
  }

  /** The vocabulary entry of `id`, or undefined. */
  idToToken(id: number): string | undefined {
    if (this.subset === null) return this.idToTokenTable[id];
    const b = this.subset[id];
    return b === undefined ? undefined : this.idToTokenTable[b];
  }

  /**
   * The base ids a subset for `texts` keeps: every added (special) token, the byte-level alphabet (so
   * any text stays encodable), every id of the texts' tokenisations and `ids`. Only on a full tokenizer.
   */
  subsetFor(texts: Iterable<string>, ids: Iterable<number> = []): number[] {
    if (this.subset !== null) throw new Error('subsetFor: this tokenizer is already a subset');
    const keep = new Set<number>(addedTokenIds(join(this.dir, 'tokenizer.json')));
    for (const ch of byteLevelAlphabet()) {
      const id = this.vocab.get(ch);
      if (id === undefined) throw inputError({ file: join(this.dir, 'tokenizer.json') }, `byte-level character ${JSON.stringify(ch)} is not in the vocabulary`);
      keep.add(id);
    }
    for (const t of texts) for (const id of this.hf.encode(t, { add_special_tokens: false })) keep.add(id);
    for (const id of ids) {
      if (!Number.isSafeInteger(id) || id < 0 || id >= this.vocabSize) throw new Error(`subsetFor: id ${id} is outside the vocabulary`);
      keep.add(id);
    }
    return [...keep].sort((a, b) => a - b);
  }

  /** The tokenizer_config chat template rendered as text (Qwen); throws when there is none (Llama). */
  applyChatTemplate(messages: readonly ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    if (this.hf.chat_template === null || this.hf.chat_template === undefined) {
      throw inputError({ file: join(this.dir, 'tokenizer_config.json'), field: 'chat_template' }, 'missing');
    }
    const text = this.hf.apply_chat_template(
      messages.map((m) => ({ ...m })),
      {
        tokenize: false,
        add_generation_prompt: opts.addGenerationPrompt ?? false,
      },
    );
    if (typeof text !== 'string') throw new Error('apply_chat_template did not return a string');
    return text;
  }

  /**
   * Writes a copy of this tokenizer with `tokens` added as special tokens into `outDir` and loads it.
   * New tokens get ids vocabSize, vocabSize+1, ... (HF's len(tokenizer)); tokens already in the
   * vocabulary keep their id and are not added again. Returns the loaded tokenizer and each token's id.
   */
  async addSpecialTokens(tokens: readonly string[], outDir: string): Promise<{ tokenizer: Tokenizer; ids: number[] }> {
    const out = resolve(outDir);
    if (out === this.dir) throw new Error('addSpecialTokens: outDir must differ from the source folder');
    const ids: number[] = [];
    const added: Array<{ id: number; content: string }> = [];
    for (const t of tokens) {
      if (t.length === 0) throw inputError({ field: 'tokens' }, 'empty token');
      const existing = this.vocab.get(t) ?? added.find((a) => a.content === t)?.id;
      if (existing !== undefined) {
        ids.push(existing);
        continue;
      }
      const id = this.idToTokenTable.length + added.length;
      added.push({ id, content: t });
      ids.push(id);
    }
    const tjPath = join(this.dir, 'tokenizer.json');
    const tcPath = join(this.dir, 'tokenizer_config.json');
    const tj = insertAddedTokens(readFileSync(tjPath, 'utf8'), added, tjPath);
    const cfg = JSON.parse(readFileSync(tcPath, 'utf8')) as Record<string, unknown>;
    const decoder = { ...((cfg['added_tokens_decoder'] as Record<string, unknown> | undefined) ?? {}) };
    for (const a of added) {
      decoder[String(a.id)] = { content: a.content, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
    }
    const extra = Array.isArray(cfg['additional_special_tokens']) ? (cfg['additional_special_tokens'] as string[]) : [];
    const newCfg = {
      ...cfg,
      added_tokens_decoder: decoder,
      additional_special_tokens: [...extra, ...added.map((a) => a.content).filter((c) => !extra.includes(c))],
    };
    writeFileAtomic(join(out, 'tokenizer_config.json'), `${JSON.stringify(newCfg, null, 2)}\n`);
    writeFileAtomic(join(out, 'tokenizer.json'), tj);
    if (this.subset !== null) {
      // New tokens take base ids after the base vocabulary and our ids after the subset.
      const missing = ids.find((b) => this.fromBase?.get(b) === undefined && !added.some((a) => a.id === b));
      if (missing !== undefined) throw inputError({ field: 'tokens' }, `token id ${missing} exists in the base vocabulary but not in the subset`);
      writeVocabSubset(out, [...this.subset, ...added.map((a) => a.id)]);
      const tokenizer = await Tokenizer.load(out);
      return { tokenizer, ids: tokens.map((t) => tokenizer.tokenToId(t) as number) };
    }
    return { tokenizer: await Tokenizer.load(out), ids };
  }
}

function notFound(file: string): Error {
  return inputError({ file }, 'not found (write the folder with materializeTokenizer)');
}

/** Throws a one-line error naming `file` unless it exists and holds a JSON object. */
function checkJsonObject(file: string): void {
  if (!existsSync(file)) throw notFound(file);
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw inputError({ file }, `not valid JSON (${(e as Error).message}); a truncated copy? copy or materialize it again`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw inputError({ file }, 'expected a JSON object');
}

/** Loads a tokenizer folder (see Tokenizer.load). */
export function loadTokenizer(dir: string): Promise<Tokenizer> {
  return Tokenizer.load(dir);
}

/** Index of the bracket closing the JSON array/object that opens at `open`, skipping strings. */
function matchingBracket(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const ch = text[i];
    if (ch === '"') {
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
    } else if (ch === '[' || ch === '{') {
      depth++;
    } else if (ch === ']' || ch === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/**
 * Appends entries to tokenizer.json's top-level `added_tokens` array in the raw text, in the file's
 * own layout, leaving every other byte unchanged; the result is parsed back and checked.
 */
export function insertAddedTokens(raw: string, added: ReadonlyArray<{ id: number; content: string }>, file: string): string {
  if (added.length === 0) return raw;
  const key = raw.indexOf('"added_tokens"');
  const open = key < 0 ? -1 : raw.indexOf('[', key);
  const close = open < 0 ? -1 : matchingBracket(raw, open);
  if (close < 0) throw inputError({ file, field: 'added_tokens' }, 'array not found');
  const body = raw.slice(open + 1, close);
  const lastEnd = body.lastIndexOf('}');
  // Indentation of the array items and of their fields, taken from the existing layout.
  const itemIndent = /\n([ \t]*)\{/.exec(body)?.[1] ?? '    ';
  const fieldIndent = /\{\n([ \t]*)"/.exec(body)?.[1] ?? `${itemIndent}  `;
  const entries = added.map((a) => {
    const fields = [
      `"id": ${a.id}`,
      `"content": ${JSON.stringify(a.content)}`,
      '"single_word": false',
      '"lstrip": false',
      '"rstrip": false',
      '"normalized": false',
      '"special": true',
    ];
    return `${itemIndent}{\n${fields.map((f) => fieldIndent + f).join(',\n')}\n${itemIndent}}`;
  });
  const insertAt = lastEnd < 0 ? open + 1 : open + 1 + lastEnd + 1;
  const joined = (lastEnd < 0 ? '\n' : ',\n') + entries.join(',\n');
  const out = raw.slice(0, insertAt) + joined + raw.slice(insertAt);
  const parsed = JSON.parse(out) as { added_tokens: Array<{ id: number; content: string }> };
  const tail = parsed.added_tokens.slice(-added.length);
  if (tail.some((t, i) => t.id !== added[i]?.id || t.content !== added[i]?.content)) {
    throw new Error(`insertAddedTokens: ${file}: inserted entries did not parse back`);
  }
  return out;
}

/** The vocabulary-subset file of a tokenizer folder (our ids = positions in `ids`, base ids sorted). */
export const VOCAB_SUBSET_FILE = 'vocab_subset.json';
const VOCAB_SUBSET_FORMAT = 'latent-sft/vocab-subset@1';

/** Writes `<dir>/vocab_subset.json` for sorted, distinct base ids. */
export function writeVocabSubset(dir: string, baseIds: readonly number[]): void {
  for (let i = 1; i < baseIds.length; i++) {
    if ((baseIds[i] as number) <= (baseIds[i - 1] as number)) throw new Error('writeVocabSubset: base ids must be strictly increasing');
  }
  writeFileAtomic(join(dir, VOCAB_SUBSET_FILE), `${JSON.stringify({ format: VOCAB_SUBSET_FORMAT, size: baseIds.length, ids: baseIds })}\n`);
}

/** The base ids of `<dir>/vocab_subset.json`, or null when the folder has none. */
export function readVocabSubset(dir: string): number[] | null {
  const file = join(dir, VOCAB_SUBSET_FILE);
  if (!existsSync(file)) return null;
  let v: unknown;
  try {
    v = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw inputError({ file }, `not valid JSON (${(e as Error).message})`);
  }
  const o = v as { format?: unknown; size?: unknown; ids?: unknown };
  if (typeof v !== 'object' || v === null || o.format !== VOCAB_SUBSET_FORMAT) throw inputError({ file, field: 'format' }, `expected '${VOCAB_SUBSET_FORMAT}'`);
  if (!Array.isArray(o.ids) || o.ids.length !== o.size) throw inputError({ file, field: 'ids' }, 'expected an array of `size` base ids');
  const ids = o.ids as unknown[];
  for (let i = 0; i < ids.length; i++) {
    const x = ids[i];
    if (!Number.isSafeInteger(x) || (x as number) < 0 || (i > 0 && (x as number) <= (ids[i - 1] as number))) {
      throw inputError({ file, field: `ids[${i}]` }, 'base ids must be strictly increasing integers >= 0');
    }
  }
  return ids as number[];
}

function checkSubset(subset: readonly number[], baseSize: number, vocab: ReadonlyMap<string, number>, file: string): void {
  const last = subset[subset.length - 1];
  if (last !== undefined && last >= baseSize) throw inputError({ file, field: 'ids' }, `base id ${last} is outside the base vocabulary [0, ${baseSize})`);
  const kept = new Set(subset);
  for (const ch of byteLevelAlphabet()) {
    const id = vocab.get(ch);
    if (id === undefined || !kept.has(id))
      throw inputError({ file, field: 'ids' }, `the byte-level character ${JSON.stringify(ch)} is missing (texts could not be spelled)`);
  }
}

/** The 256 characters of the byte-level BPE alphabet (GPT-2's bytes_to_unicode). */
export function byteLevelAlphabet(): string[] {
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out.push(String.fromCodePoint(printable ? b : 256 + n++));
  }
  return out;
}

/** Ids of tokenizer.json's added_tokens (the special tokens). */
function addedTokenIds(file: string): number[] {
  const j = JSON.parse(readFileSync(file, 'utf8')) as { added_tokens?: Array<{ id?: unknown }> };
  return (j.added_tokens ?? []).map((a) => a.id).filter((id): id is number => Number.isSafeInteger(id));
}
