// The tokenised-examples cache: a second prepareData reads the ids back (equal to a fresh tokenisation),
// a damaged cache file is recomputed, LATENT_SFT_CACHE=0 turns it off.
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, materializeTokenizer } from '@latent-sft/tokenizer';
import { afterEach, describe, expect, it } from 'vitest';
import { type DataSpec, examplesCacheDir, prepareData } from './data.js';

const spec: DataSpec = { source: 'multiplication', count: 40, digitsA: 2, digitsB: 3, split: 'train', seed: 3, maxTokens: 512 };
const saved = process.env['LATENT_SFT_CACHE'];
afterEach(() => {
  if (saved === undefined) delete process.env['LATENT_SFT_CACHE'];
  else process.env['LATENT_SFT_CACHE'] = saved;
});

describe('prepareData cache', () => {
  it('reads back what it wrote, recomputes a damaged file, and can be turned off', async () => {
    const tok = await loadTokenizer(materializeTokenizer('llama-3.2', mkdtempSync(join(tmpdir(), 'data-tok-'))).dir);
    const root = mkdtempSync(join(tmpdir(), 'data-cache-'));
    process.env['LATENT_SFT_CACHE'] = root;
    const dir = examplesCacheDir() as string;
    expect(dir).toBe(join(root, 'examples'));
    const first = prepareData(spec, tok);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    const second = prepareData(spec, tok);
    expect(second.examples).toEqual(first.examples);
    expect(second.problems).toEqual(first.problems);
    expect(second.fingerprint).toBe(first.fingerprint);
    writeFileSync(join(dir, files[0] as string), '{"format": "latent-sft/examples@1", "selected": [0');
    expect(prepareData(spec, tok).fingerprint).toBe(first.fingerprint);
    expect(prepareData({ ...spec, seed: 4 }, tok).fingerprint).not.toBe(first.fingerprint);
    expect(readdirSync(dir)).toHaveLength(2);
    process.env['LATENT_SFT_CACHE'] = '0';
    expect(examplesCacheDir()).toBeNull();
    expect(prepareData(spec, tok).fingerprint).toBe(first.fingerprint);
  });
});
