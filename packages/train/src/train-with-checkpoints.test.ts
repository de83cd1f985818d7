import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mlpBatch, mlpData, mlpInit, mlpObjective } from '../test/objectives.js';
import { type CheckpointTensor, CheckpointManager, type RunRecord, Trainer, readMetrics, safetensorsCodec, trainWithCheckpoints } from './index.js';
import { stepDirName } from './checkpoint.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'train-ckpt-'));
const record: RunRecord = { app: 'trainer-test', schemaVersion: 1, configHash: 'd'.repeat(64), createdAt: '2024-01-01T00:00:00.000Z', config: {} };
const H = 8;
const DATA = mlpData(24);

class Crash extends Error {}

/** Runs (or resumes) the MLP with AdamW + warmup/decay + clipping up to `steps`, checkpointing every 5. */
async function run(dir: string, steps: number, crashAt?: number) {
  const trainer = await Trainer.create(
    {
      objective: mlpObjective(H),
      optimizer: { kind: 'adamw', lr: 2e-2 },
      schedule: { kind: 'linear', warmupSteps: 2, totalSteps: 12 },
      totalSteps: 12,
      clipNorm: 1.0,
      gradAccum: 2,
      device: { kind: 'cpu' },
    },
    { trainable: mlpInit(H), frozen: {} },
  );
  const manager = CheckpointManager.open({ dir, keepLast: 2, keepBest: false, metricMode: 'min', codec: safetensorsCodec, record, resume: true });
  try {
    return await trainWithCheckpoints({
      trainer,
      manager,
      seed: 5,
      steps,
      data: { size: 24, batchSize: 6 },
      checkpointEvery: 5,
      metricsPath: join(dir, 'metrics.jsonl'),
      now: () => 0,
      batches: (b, s) => {
        if (crashAt !== undefined && s.step + 1 === crashAt) throw new Crash(`crash at ${crashAt}`);
        return [mlpBatch(DATA, b.indices.slice(0, 3)), mlpBatch(DATA, b.indices.slice(3))];
      },
    });
  } finally {
    await trainer.release();
  }
}

describe('trainWithCheckpoints', () => {
  it('12 steps straight == 5 + resume + 7, bit for bit (AdamW, accumulation, safetensors checkpoints)', async () => {
    const a = tmp();
    const straight = await run(a, 12);
    expect(straight.resumedFrom).toBeNull();
    const b = tmp();
    const first = await run(b, 5);
    expect(first.state.step).toBe(5);
    const resumed = await run(b, 12);
    expect(resumed.resumedFrom?.step).toBe(5);

    const ma = readMetrics(join(a, 'metrics.jsonl'));
    const mb = readMetrics(join(b, 'metrics.jsonl'));
    expect(ma.map((r) => r.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(mb.map((r) => r.loss)).toEqual(ma.map((r) => r.loss)); // exact float equality
    expect(mb).toEqual(ma);
    expect(resumed.state).toEqual(straight.state);
    expect(readFileSync(join(b, stepDirName(12), 'tensors.safetensors'))).toEqual(readFileSync(join(a, stepDirName(12), 'tensors.safetensors')));
    expect(ma[11]!.loss as number).toBeLessThan(ma[0]!.loss as number);
  });

  it('a crash mid-run resumes from the last checkpoint and ends identically', async () => {
    const a = tmp();
    await run(a, 12);
    const b = tmp();
    await expect(run(b, 12, 8)).rejects.toThrow(Crash);
    const resumed = await run(b, 12);
    expect(resumed.resumedFrom?.step).toBe(5);
    expect(readMetrics(join(b, 'metrics.jsonl'))).toEqual(readMetrics(join(a, 'metrics.jsonl')));
  });
});

describe('safetensorsCodec', () => {
  it('round-trips every checkpoint dtype exactly', () => {
    const dir = tmp();
    const tensors: CheckpointTensor[] = [
      { name: 'f64', dtype: 'float64', shape: [2], data: Float64Array.of(Math.PI, -1e-300) },
      { name: 'f32', dtype: 'float32', shape: [2, 2], data: Float32Array.of(1.5, -2, 3e-38, 7) },
      { name: 'f16', dtype: 'float16', shape: [1], data: Uint16Array.of(0x3c00) },
      { name: 'bf16', dtype: 'bfloat16', shape: [2], data: Uint16Array.of(0x3f80, 0xc000) },
      { name: 'i64', dtype: 'int64', shape: [], data: BigInt64Array.of(-(2n ** 62n)) },
      { name: 'i32', dtype: 'int32', shape: [1], data: Int32Array.of(-7) },
      { name: 'i8', dtype: 'int8', shape: [1], data: Int8Array.of(-3) },
      { name: 'u8', dtype: 'uint8', shape: [1], data: Uint8Array.of(250) },
      { name: 'bool', dtype: 'bool', shape: [2], data: Uint8Array.of(1, 0) },
    ];
    const files = safetensorsCodec.write(dir, tensors);
    expect(files).toEqual(['tensors.safetensors']);
    const back = safetensorsCodec.read(dir, files);
    const byName = new Map(back.map((t) => [t.name, t]));
    for (const t of tensors) expect(byName.get(t.name)).toEqual({ ...t, shape: [...t.shape] });
    expect(() => safetensorsCodec.write(dir, [{ name: 'x', dtype: 'float32', shape: [1], data: Float64Array.of(1) }])).toThrow(
      /float32 needs Float32Array data, got Float64Array/,
    );
  });
});
