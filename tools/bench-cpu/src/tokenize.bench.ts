// The Llama-3.2 tokenizer (transformers.js, local files) on a GSM8K-sized problem with its CoT.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTokenizer, materializeTokenizer } from '@latent-sft/tokenizer';
import { bench, describe } from 'vitest';
import { SHORT } from './options.js';

const tokenizer = await loadTokenizer(materializeTokenizer('llama-3.2', mkdtempSync(join(tmpdir(), 'bench-tok-'))).dir);
const TEXT =
  'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. ' +
  'How many clips did Natalia sell altogether in April and May? <<48/2=24>> <<48+24=72>> #### 72';
const ids = tokenizer.encode(TEXT);

describe('tokenizer', () => {
  bench(
    'encode a GSM8K problem + CoT (llama-3.2)',
    () => {
      tokenizer.encode(TEXT);
    },
    SHORT,
  );
  bench(
    'decode it back',
    () => {
      tokenizer.decode(ids);
    },
    SHORT,
  );
});
