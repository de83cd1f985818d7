// The KV-cache decoder graph: greedy decoding with the cache (prefill with P = 0 through the same graph,
// then one token per step) gives the same tokens and logits as recomputing the full sequence.
// Batching uses LEFT padding (pads first, attention_mask 0, position ids = cumsum(mask) − 1, pads at 0),
// so every row's next token is at the same index and the new tokens are appended as one column.
import { fileURLToPath } from 'node:url';
import { Graph, serialize } from '@latent-sft/graph';
import { type HostTensor, Session } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { loadCheckpoint } from './checkpoint.js';
import { buildDecoder } from './decoder.js';

/** Cached vs recomputed logits, both fp32 (different reduction lengths per step). */
const CACHED = { atol: 1e-4, rtol: 0 };

const fixture = fileURLToPath(new URL('../test/fixtures/tiny-llama', import.meta.url));

function int64(dims: number[], values: number[]): HostTensor {
  return { dtype: 'int64', dims, data: BigInt64Array.from(values, BigInt) };
}
/** Position ids of a left-padded mask row: cumsum(mask) − 1, pads at 0. */
function positions(mask: number[][]): number[] {
  return mask.flatMap((row) => {
    let n = -1;
    return row.map((m) => (m === 1 ? ++n : 0));
  });
}
function argmaxLast(logits: HostTensor): number[] {
  const [B, T, V] = logits.dims as [number, number, number];
  const d = logits.data as Float32Array;
  return Array.from({ length: B }, (_, b) => {
    let best = 0;
    for (let v = 1; v < V; v++) if ((d[(b * T + T - 1) * V + v] as number) > (d[(b * T + T - 1) * V + best] as number)) best = v;
    return best;
  });
}
function lastRow(logits: HostTensor): Float32Array {
  const [B, T, V] = logits.dims as [number, number, number];
  const d = logits.data as Float32Array;
  const out = new Float32Array(B * V);
  for (let b = 0; b < B; b++) out.set(d.subarray((b * T + T - 1) * V, (b * T + T) * V), b * V);
  return out;
}

describe('KV-cache decoder graph', () => {
  it('greedy-decodes 6 tokens for a left-padded batch exactly as full recomputation', async () => {
    const ckpt = loadCheckpoint(fixture);
    const c = ckpt.config;
    const tensors = ckpt.readAll();
    const gc = new Graph('decode');
    const dec = buildDecoder(gc, c, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors }, cache: true, maxPositions: 64 });
    expect(dec.presents.map((p) => p.key.name)).toEqual(Array.from({ length: c.numHiddenLayers }, (_, i) => `present.${i}.key`));
    const gf = new Graph('full');
    buildDecoder(gf, c, { input: 'ids', mask: 'padding', params: { kind: 'initializers', tensors }, maxPositions: 64 });
    const [cached, full] = await Promise.all([Session.create(serialize(gc).model), Session.create(serialize(gf).model)]);

    const pad = c.padTokenId ?? 0;
    const prompts = [
      [17, 4, 99, 23, 8],
      [61, 5, 140],
    ];
    const L = Math.max(...prompts.map((p) => p.length));
    const seqs = prompts.map((p) => [...Array<number>(L - p.length).fill(pad), ...p]);
    const mask = prompts.map((p) => [...Array<number>(L - p.length).fill(0), ...p.map(() => 1)]);
    const B = prompts.length;
    const [kvH, hd] = [c.numKeyValueHeads, c.headDim];

    // Cached: prefill (P = 0) then one token per step.
    let past: Record<string, HostTensor> = {};
    for (let i = 0; i < c.numHiddenLayers; i++) {
      for (const kv of ['key', 'value']) past[`past_key_values.${i}.${kv}`] = { dtype: 'float32', dims: [B, kvH, 0, hd], data: new Float32Array(0) };
    }
    let ids = seqs.flat();
    let T = L;
    let pos = positions(mask);
    const cachedTokens: number[][] = [];
    const cachedLogits: Float32Array[] = [];
    for (let step = 0; step < 6; step++) {
      const out = await cached.run({
        input_ids: int64([B, T], ids),
        attention_mask: int64([B, mask[0]!.length], mask.flat()),
        position_ids: int64([B, T], pos),
        ...past,
      });
      expect(out['logits']!.dims).toEqual([B, T, c.vocabSize]);
      expect(out['present.0.key']!.dims).toEqual([B, kvH, mask[0]!.length, hd]);
      const next = argmaxLast(out['logits']!);
      cachedTokens.push(next);
      cachedLogits.push(lastRow(out['logits']!));
      past = {};
      for (let i = 0; i < c.numHiddenLayers; i++) {
        for (const kv of ['key', 'value']) past[`past_key_values.${i}.${kv}`] = out[`present.${i}.${kv}`]!;
      }
      pos = pos.filter((_, j) => j % T === T - 1).map((p) => p + 1); // each row's last position + 1
      for (const row of mask) row.push(1);
      ids = next;
      T = 1;
    }

    // Recomputed: the whole sequence every step.
    const mask2 = prompts.map((p) => [...Array<number>(L - p.length).fill(0), ...p.map(() => 1)]);
    const rows = seqs.map((s) => [...s]);
    for (let step = 0; step < 6; step++) {
      const len = rows[0]!.length;
      const out = await full.run({
        input_ids: int64([B, len], rows.flat()),
        attention_mask: int64([B, len], mask2.flat()),
        position_ids: int64([B, len], positions(mask2)),
      });
      const next = argmaxLast(out['logits']!);
      expect(next, `step ${step}`).toEqual(cachedTokens[step]);
      expect(cachedLogits[step], `step ${step}`).toBeAllclose(lastRow(out['logits']!), CACHED);
      rows.forEach((r, b) => r.push(next[b]!));
      for (const m of mask2) m.push(1);
    }
    // Not a degenerate run: the rows generate different continuations.
    expect(cachedTokens.map((t) => t[0])).not.toEqual(cachedTokens.map((t) => t[1]));
    await Promise.all([cached.release(), full.release()]);
  });
});
