// Test references without a KV cache: every step recomputes the whole sequence, one prompt at a time
// (B = 1, no padding), through buildDecoder's full-sequence graph, and the latent math runs on the
// CPU (@latent-sft/latent, fp64). What the engine must reproduce with its batched, cached, on-device path.
import { fileURLToPath } from 'node:url';
import { Graph, serialize } from '@latent-sft/graph';
import { matrix, softEmbeddingTopK, topKDistribution } from '@latent-sft/latent';
import { type ModelConfig, type NamedTensor, buildDecoder, loadCheckpoint } from '@latent-sft/models';
import { type HostTensor, Session } from '@latent-sft/runtime';

export const fixture = fileURLToPath(new URL('../../models/test/fixtures/tiny-llama', import.meta.url));

export interface Tiny {
  config: ModelConfig;
  tensors: NamedTensor[];
  /** Input embedding matrix [V, D]. */
  W: Float32Array;
}

export function loadTiny(): Tiny {
  const ck = loadCheckpoint(fixture);
  const tensors = ck.readAll();
  const W = tensors.find((t) => t.name === 'model.embed_tokens.weight')?.data;
  if (W === undefined) throw new Error('fixture without embed_tokens');
  return { config: ck.config, tensors, W };
}

const int64 = (dims: number[], values: number[]): HostTensor => ({ dtype: 'int64', dims, data: BigInt64Array.from(values, BigInt) });

/** First index of the largest value (torch.argmax / TopK tie rule). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let v = 1; v < row.length; v++) if ((row[v] as number) > (row[best] as number)) best = v;
  return best;
}

/** Last-position logits of one sequence by full recomputation. */
export class FullRecompute {
  private constructor(
    private readonly tiny: Tiny,
    private readonly ids: Session,
    private readonly embeds: Session,
  ) {}

  static async create(tiny: Tiny): Promise<FullRecompute> {
    const build = (input: 'ids' | 'embeds'): Uint8Array => {
      const g = new Graph(`full_${input}`);
      buildDecoder(g, tiny.config, { input, mask: 'padding', params: { kind: 'initializers', tensors: tiny.tensors } });
      return serialize(g).model;
    };
    return new FullRecompute(tiny, await Session.create(build('ids')), await Session.create(build('embeds')));
  }

  private static last(out: HostTensor, V: number): Float32Array {
    const d = out.data as Float32Array;
    return d.slice(d.length - V);
  }

  async fromIds(seq: readonly number[]): Promise<Float32Array> {
    const n = seq.length;
    const out = await this.ids.run({
      input_ids: int64([1, n], [...seq]),
      attention_mask: int64([1, n], Array<number>(n).fill(1)),
      position_ids: int64([1, n], [...seq.keys()]),
    });
    return FullRecompute.last(out['logits'] as HostTensor, this.tiny.config.vocabSize);
  }

  async fromEmbeds(rows: readonly Float32Array[]): Promise<Float32Array> {
    const n = rows.length;
    const D = this.tiny.config.hiddenSize;
    const data = new Float32Array(n * D);
    rows.forEach((r, i) => data.set(r, i * D));
    const out = await this.embeds.run({
      inputs_embeds: { dtype: 'float32', dims: [1, n, D], data },
      attention_mask: int64([1, n], Array<number>(n).fill(1)),
      position_ids: int64([1, n], [...Array(n).keys()]),
    });
    return FullRecompute.last(out['logits'] as HostTensor, this.tiny.config.vocabSize);
  }

  embed(id: number): Float32Array {
    const D = this.tiny.config.hiddenSize;
    return this.tiny.W.slice(id * D, (id + 1) * D);
  }

  /** Greedy explicit decoding with the stop rule (stop id not in the output). */
  async greedy(prompt: readonly number[], maxNew: number, stopIds: readonly number[]): Promise<{ ids: number[]; finish: 'stop' | 'length' }> {
    const seq = [...prompt];
    const ids: number[] = [];
    while (ids.length < maxNew) {
      const next = argmax(await this.fromIds(seq));
      if (stopIds.includes(next)) return { ids, finish: 'stop' };
      ids.push(next);
      seq.push(next);
    }
    return { ids, finish: 'length' };
  }

  /**
   * Latent reasoning as spec §5.1 (HF loop) but without re-prefill: argmax == endId or maxLatent
   * stops; otherwise z = softEmbeddingTopK(topKDistribution(logits, k)) is appended; then the
   * embeddings of endIds, then greedy answer decoding. `argmaxes` lists each latent check's argmax.
   */
  async latent(
    prompt: readonly number[],
    o: { k: number; maxLatent: number; endId: number; endIds: readonly number[]; maxNew: number; stopIds: readonly number[] },
  ) {
    const { W } = this.tiny;
    const D = this.tiny.config.hiddenSize;
    const V = this.tiny.config.vocabSize;
    const rows = prompt.map((id) => this.embed(id));
    const topk: Array<{ ids: number[]; probs: number[] }> = [];
    const zs: Float32Array[] = [];
    const argmaxes: number[] = [];
    let stop: 'end' | 'max';
    for (;;) {
      const logits = await this.fromEmbeds(rows);
      const a = argmax(logits);
      argmaxes.push(a);
      if (a === o.endId || zs.length === o.maxLatent) {
        stop = a === o.endId ? 'end' : 'max';
        break;
      }
      const dist = topKDistribution(matrix(logits, 1, V), o.k);
      const z = Float32Array.from(softEmbeddingTopK(dist.indices, dist.probs, matrix(W, V, D)).data);
      topk.push({ ids: Array.from(dist.indices.data), probs: Array.from(dist.probs.data) });
      zs.push(z);
      rows.push(z);
    }
    for (const id of o.endIds) rows.push(this.embed(id));
    const answer: number[] = [];
    let finish: 'stop' | 'length' = 'length';
    while (answer.length < o.maxNew) {
      const next = argmax(await this.fromEmbeds(rows));
      if (o.stopIds.includes(next)) {
        finish = 'stop';
        break;
      }
      answer.push(next);
      rows.push(this.embed(next));
    }
    return { count: zs.length, topk, zs, argmaxes, stop, answer, finish };
  }

  async release(): Promise<void> {
    await Promise.all([this.ids.release(), this.embeds.release()]);
  }
}
