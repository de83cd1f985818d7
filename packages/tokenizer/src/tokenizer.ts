// A thin typed wrapper over a transformers.js tokenizer loaded from a local folder, plus
// addSpecialTokens, which writes a new folder with extra added tokens (as HF's
// `tokenizer.add_special_tokens({'additional_special_tokens': [...]})` + `save_pretrained` would), so
// that both transformers.js and HF `AutoTokenizer` load the grown vocabulary.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inputError, writeFileAtomic } from '@latent-sft/core';
import { autoTokenizerFromDir, type PreTrainedTokenizer } from './hf.js';

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
  /** Number of ids (the largest id + 1), added tokens included: 128256 for Llama-3.2. */
  readonly vocabSize: number;
  readonly family: TokenizerFamily;
  readonly eosToken: string;
  readonly eosId: number;
  /** BOS id, or null when the tokenizer has none (Qwen). */
  readonly bosId: number | null;
  /** The config's pad token id, falling back to EOS as HF does (see prompt.ts padId for Latent-SFT's rule). */
  readonly configPadId: number;
  private readonly idToTokenTable: string[];

  private constructor(
    /** Absolute path of the folder. */
    readonly dir: string,
    private readonly hf: PreTrainedTokenizer,
    private readonly vocab: Map<string, number>,
  ) {
    let max = -1;
    for (const id of vocab.values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    this.idToTokenTable = new Array<string>(this.vocabSize);
    for (const [tok, id] of vocab) this.idToTokenTable[id] = tok;
    if (vocab.has('<|eot_id|>') && vocab.has('<|end_of_text|>')) this.family = 'llama';
    else if (vocab.has('<|im_start|>') && vocab.has('<|im_end|>')) this.family = 'qwen';
    else throw inputError({ file: join(dir, 'tokenizer.json') }, 'neither a Llama-3 nor a Qwen vocabulary');
    const eos = hf.eos_token;
    const eosId = eos === null || eos === undefined ? undefined : vocab.get(eos);
    if (eos === null || eos === undefined || eosId === undefined) {
      throw inputError({ file: join(dir, 'tokenizer_config.json'), field: 'eos_token' }, 'missing or not in the vocabulary');
    }
    this.eosToken = eos;
    this.eosId = eosId;
    const bos = hf.bos_token;
    this.bosId = bos === null || bos === undefined ? null : (vocab.get(bos) ?? null);
    this.configPadId = hf.pad_token_id ?? eosId;
  }

  /** Loads `dir` with transformers.js AutoTokenizer in local-only mode. */
  static async load(dir: string): Promise<Tokenizer> {
    const abs = resolve(dir);
    for (const f of ['tokenizer.json', 'tokenizer_config.json']) {
      if (!existsSync(join(abs, f))) {
        throw inputError({ file: join(abs, f) }, 'not found (write the folder with materializeTokenizer)');
      }
    }
    const hf = await autoTokenizerFromDir(abs);
    return new Tokenizer(abs, hf, hf.get_vocab());
  }

  /** Token ids of `text`; no BOS unless addSpecialTokens. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? false });
  }

  /** Text of `ids` (clean-up of tokenization spaces as the tokenizer_config says, like HF). */
  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
        throw new Error(`decode: id ${id} is outside the vocabulary [0, ${this.vocabSize})`);
      }
    }
    return this.hf.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  /** The id of a vocabulary entry (byte-level form, e.g. 'Ġworld'), or undefined. */
  tokenToId(token: string): number | undefined {
    return this.vocab.get(token);
  }

  /** The vocabulary entry of `id`, or undefined. */
  idToToken(id: number): string | undefined {
    return this.idToTokenTable[id];
  }

  /** The tokenizer_config chat template rendered as text (Qwen); throws when there is none (Llama). */
  applyChatTemplate(messages: readonly ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    if (this.hf.chat_template === null || this.hf.chat_template === undefined) {
      throw inputError({ file: join(this.dir, 'tokenizer_config.json'), field: 'chat_template' }, 'missing');
    }
    const text = this.hf.apply_chat_template(messages.map((m) => ({ ...m })), {
      tokenize: false,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
    });
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
      const id = this.vocabSize + added.length;
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
    return { tokenizer: await Tokenizer.load(out), ids };
  }
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
      `"id": ${a.id}`, `"content": ${JSON.stringify(a.content)}`, '"single_word": false', '"lstrip": false',
      '"rstrip": false', '"normalized": false', '"special": true',
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
