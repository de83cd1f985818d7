// The inspect commands as plain functions (the yargs layer in cli.ts only parses and prints):
//   logits:   a checkpoint folder + token ids → fp32 logits on the ORT CPU, one row per position;
//   tokenize: a folder holding tokenizer.json + tokenizer_config.json + text → token ids.
import { inputError } from '@latent-sft/core';
import { Graph, serialize } from '@latent-sft/graph';
import { buildDecoder, configFieldList, loadCheckpoint } from '@latent-sft/models';
import { Session } from '@latent-sft/runtime';
import { loadTokenizer } from '@latent-sft/tokenizer';

/** Parses comma-separated token ids below `vocabSize`; one-line errors name the bad entry. */
export function parseIds(text: string, vocabSize: number): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length === 0 || (parts.length === 1 && parts[0] === '')) throw inputError({ field: '--ids' }, 'no token ids given');
  return parts.map((p, i) => {
    if (!/^\d+$/.test(p)) throw inputError({ field: '--ids' }, `entry ${i + 1} ${JSON.stringify(p)} is not a non-negative integer`);
    const id = Number(p);
    if (id >= vocabSize) throw inputError({ field: '--ids' }, `id ${id} is not below the vocabulary size ${vocabSize}`);
    return id;
  });
}

/** Logits [T][V] of one sequence of ids (positions 0..T-1, causal mask) with the checkpoint in `model`. */
export async function logitsCommand(opts: { model: string; ids: string; allowConfigFields?: string }): Promise<{ logits: number[][] }> {
  const ckpt = loadCheckpoint(opts.model, { allowConfigFields: configFieldList(opts.allowConfigFields ?? '') });
  const c = ckpt.config;
  const ids = parseIds(opts.ids, c.vocabSize);
  if (ids.length > c.maxPositionEmbeddings) throw inputError({ field: '--ids' }, `${ids.length} ids exceed max_position_embeddings ${c.maxPositionEmbeddings}`);
  const g = new Graph('inspect_logits');
  buildDecoder(g, c, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors: ckpt.readAll() }, maxPositions: ids.length });
  const session = await Session.create(serialize(g).model);
  try {
    const T = ids.length;
    const int64 = (f: (i: number) => number) => ({ dtype: 'int64' as const, dims: [1, T], data: BigInt64Array.from({ length: T }, (_, i) => BigInt(f(i))) });
    const out = await session.run({ input_ids: int64((i) => ids[i] as number), attention_mask: int64(() => 1), position_ids: int64((i) => i) });
    const data = out['logits']?.data as Float32Array;
    const V = c.vocabSize;
    return { logits: Array.from({ length: T }, (_, t) => Array.from(data.subarray(t * V, (t + 1) * V))) };
  } finally {
    await session.release();
  }
}

/** Token ids of `text` (no special tokens added) with the tokenizer files in `model`. */
export async function tokenizeCommand(opts: { model: string; text: string }): Promise<{ ids: number[] }> {
  const tok = await loadTokenizer(opts.model);
  return { ids: tok.encode(opts.text) };
}
