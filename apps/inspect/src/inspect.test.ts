// The inspect commands on the committed tiny checkpoints: logits against the HF goldens, tokenization
// with a materialized Llama-3.2 tokenizer, and one-line errors for bad input.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { openSafetensors } from '@latent-sft/models';
import { materializeTokenizer } from '@latent-sft/tokenizer';
import { describe, expect, it } from 'vitest';
import { runCli } from './cli.js';
import { logitsCommand, parseIds, tokenizeCommand } from './inspect.js';

/** fp32 ORT CPU vs float64 HF (the decoder golden tolerance). */
const LOGITS = { atol: 1e-4, rtol: 0 };
const tinyLlama = fileURLToPath(new URL('../../../packages/models/test/fixtures/tiny-llama', import.meta.url));

async function cli(argv: string[]): Promise<string> {
  let out = '';
  await runCli(argv, (t) => {
    out += t;
  });
  return out;
}

describe('inspect logits', () => {
  it('prints the logits of one sequence, equal to the HF golden row', async () => {
    const gold = openSafetensors(join(tinyLlama, 'goldens.safetensors'));
    const ids = Array.from((gold.readTensor('ids.input_ids') as BigInt64Array).slice(0, 8), Number);
    const expected = (gold.readTensor('ids.logits') as Float32Array).slice(0, 8 * 256);
    const printed = JSON.parse(await cli(['logits', '--model', tinyLlama, '--ids', ids.join(',')])) as { logits: number[][] };
    expect(printed.logits.length).toBe(8);
    expect(printed.logits[0]!.length).toBe(256);
    expect(printed.logits).toBeAllclose(
      Array.from({ length: 8 }, (_, t) => Array.from(expected.subarray(t * 256, (t + 1) * 256))),
      LOGITS,
    );
  });

  it('rejects bad ids and folders in one line', async () => {
    expect(() => parseIds('1,x,3', 10)).toThrow(`field '--ids': entry 2 "x" is not a non-negative integer`);
    expect(() => parseIds('1,-2', 10)).toThrow(`entry 2 "-2" is not a non-negative integer`);
    expect(() => parseIds('', 10)).toThrow(`field '--ids': no token ids given`);
    await expect(logitsCommand({ model: tinyLlama, ids: '3,256' })).rejects.toThrow(`field '--ids': id 256 is not below the vocabulary size 256`);
    await expect(logitsCommand({ model: '/nonexistent', ids: '1' })).rejects.toThrow('/nonexistent/config.json: not found: not an HF checkpoint folder');
  });

  it('refuses an unknown config.json field unless --allowConfigFields names it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inspect-cfg-'));
    cpSync(tinyLlama, dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...cfg, logit_softcapping: 30 }));
    await expect(cli(['logits', '--model', dir, '--ids', '1,2'])).rejects.toThrow(`${join(dir, 'config.json')}: field 'logit_softcapping': unknown field`);
    const printed = JSON.parse(await cli(['logits', '--model', dir, '--ids', '1,2', '--allowConfigFields', 'logit_softcapping'])) as { logits: number[][] };
    const plain = JSON.parse(await cli(['logits', '--model', tinyLlama, '--ids', '1,2'])) as { logits: number[][] };
    expect(printed.logits).toBeAllclose(plain.logits, { atol: 0, rtol: 0 });
  });
});

describe('inspect tokenize', () => {
  it('prints the ids of a text with the folder tokenizer, and says when the files are absent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'inspect-'));
    materializeTokenizer('llama-3.2', dir);
    const { ids } = JSON.parse(await cli(['tokenize', '--model', dir, '--text', 'Hello world'])) as { ids: number[] };
    expect(ids).toEqual([9906, 1917]); // Llama-3 BPE: "Hello", " world"
    expect((await tokenizeCommand({ model: dir, text: '' })).ids).toEqual([]);
    const bare = mkdtempSync(join(tmpdir(), 'inspect-bare-'));
    cpSync(join(tinyLlama, 'config.json'), join(bare, 'config.json'));
    await expect(tokenizeCommand({ model: bare, text: 'x' })).rejects.toThrow(/tokenizer\.json: not found \(write the folder with materializeTokenizer\)$/);
  });
});

describe('inspect CLI', () => {
  it('is strict: unknown options, missing options and unknown commands are one-line errors', async () => {
    await expect(cli(['logits', '--model', tinyLlama, '--ids', '1', '--bogus', '2'])).rejects.toThrow('Unknown argument: bogus');
    await expect(cli(['logits', '--model', tinyLlama])).rejects.toThrow('Missing required argument: ids');
    await expect(cli([])).rejects.toThrow('name a command: logits or tokenize');
    await expect(cli(['frobnicate'])).rejects.toThrow(/Unknown argument: frobnicate/);
    const e: unknown = await cli(['logits']).then(
      () => null,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(Error);
    expect((e as Error).message).not.toContain('\n');
  });
});
