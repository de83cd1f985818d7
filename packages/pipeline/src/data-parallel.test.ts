// A phase run data parallel through the phase function: phase 1's encoder step (LoRA on M0 with the
// compress token) on 2 ranks (TCP group, both in this process) vs one process. Rank 1 is given its own
// output folder, which must stay absent: rank 0 alone claims, prepares (base_model/), trains with
// checkpoints and metrics, publishes (lora_adapter/, hf/) and writes the summary, which both ranks
// return. LoRA dropout 0 (the step generators are forked per rank) and 1-digit × 1-digit problems.
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '@latent-sft/config';
import { silentLogger } from '@latent-sft/core';
import { connectTcpGroup, freePort } from '@latent-sft/distributed';
import { loadCheckpoint } from '@latent-sft/models';
import { readMetrics } from '@latent-sft/train';
import { describe, expect, it } from 'vitest';
import { phase1EncoderConfig, runPhase1Encoder, writeRandomModel } from './index.js';

/**
 * 2 ranks vs one process: float32 sums in another order, 3 AdamW steps on the LoRA factors;
 * measured max |Δ| of the merged weights 3e-8; atol 1e-6 leaves a margin.
 */
const RANKS_VS_ONE = { rtol: 0, atol: 1e-6 };

describe('phase1 encoder on 2 ranks', () => {
  it('rank 0 alone writes; the merged encoder equals the one-process run', async () => {
    const root = mkdtempSync(join(tmpdir(), 'pipeline-dp-'));
    const m0 = join(root, 'm0');
    await writeRandomModel(m0, 'llama-3.2', { hiddenSize: 16, intermediateSize: 32, layers: 1, heads: 4, kvHeads: 2 }, 3);
    const config = (out: string) =>
      loadConfig({
        schema: phase1EncoderConfig,
        overrides: {
          out,
          base: m0,
          'data.count': 6,
          'data.digitsA': 1,
          'data.digitsB': 1,
          'latent.compressionRate': 2,
          'lora.r': 4,
          'lora.dropout': 0,
          'train.steps': 3,
          'train.batchSize': 4,
          'train.lr': 2e-2,
        },
      });
    const ctx = { logger: silentLogger, now: () => new Date('2026-01-01T00:00:00Z') };
    const one = await runPhase1Encoder(config(join(root, 'one')), ctx);

    const port = await freePort('127.0.0.1');
    const groups = await Promise.all([0, 1].map((rank) => connectTcpGroup({ rank, worldSize: 2, masterAddr: '127.0.0.1', masterPort: port })));
    const outs = [join(root, 'two'), join(root, 'rank1')];
    const summaries = await Promise.all(groups.map((group, r) => runPhase1Encoder(config(outs[r]!), { ...ctx, group }).finally(() => group.close())));
    expect(existsSync(outs[1]!)).toBe(false);
    expect(summaries[1]).toEqual({ ...summaries[0], out: outs[1], wallSeconds: summaries[1]!.wallSeconds }); // rank 0's metrics, its own folder name and clock
    expect(summaries[0]!.steps).toBe(3);
    expect(summaries[0]!.last.loss).toBeCloseTo(one.last.loss as number, 4);
    expect(readMetrics(join(outs[0]!, 'metrics.jsonl'))).toHaveLength(3);
    for (const f of ['base_model/config.json', 'lora_adapter/adapter_config.json', 'hf/config.json', 'summary.json'])
      expect(existsSync(join(outs[0]!, f)), f).toBe(true);
    const a = loadCheckpoint(join(root, 'one', 'hf')).readAll();
    const b = loadCheckpoint(join(outs[0]!, 'hf')).readAll();
    expect(b.map((t) => t.name)).toEqual(a.map((t) => t.name));
    b.forEach((t, i) => expect(t.data, t.name).toBeAllclose(a[i]!.data, RANKS_VS_ONE));
  }, 600_000);
});
