import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SimulatedCrash, TOY, runToy } from '../test/toy.js';
import { initLoopState } from './loop-state.js';
import { readMetrics, type Batch } from './index.js';
import { trainLoop } from './loop.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'train-loop-'));

describe('trainLoop', () => {
  it('walks each epoch permutation in batches, rolls epochs over and keeps the partial last batch', async () => {
    const seen: Batch[] = [];
    const end = await trainLoop({
      state: initLoopState(3),
      steps: 7,
      data: { size: 10, batchSize: 4 },
      checkpointEvery: 0,
      stepFn: (_s, b) => {
        seen.push(b);
        return { loss: 1, tokens: b.indices.length };
      },
    });
    expect(seen.map((b) => b.indices.length)).toEqual([4, 4, 2, 4, 4, 2, 4]);
    expect(seen.map((b) => b.epoch)).toEqual([0, 0, 0, 1, 1, 1, 2]);
    const epoch0 = seen.slice(0, 3).flatMap((b) => b.indices);
    const epoch1 = seen.slice(3, 6).flatMap((b) => b.indices);
    expect([...epoch0].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect([...epoch1].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(epoch1).not.toEqual(epoch0);
    expect(end).toMatchObject({ step: 7, epoch: 2, dataPosition: 4, tokensSeen: 24, emaLoss: 1 });
  });

  it('dropLast skips the partial batch', async () => {
    const sizes: number[] = [];
    await trainLoop({
      state: initLoopState(3),
      steps: 4,
      data: { size: 10, batchSize: 4, dropLast: true },
      checkpointEvery: 0,
      stepFn: (_s, b) => {
        sizes.push(b.indices.length);
        return { loss: 0 };
      },
    });
    expect(sizes).toEqual([4, 4, 4, 4]);
  });

  it('stops with a one-line NonFiniteError naming the step', async () => {
    await expect(
      trainLoop({
        state: initLoopState(1),
        steps: 5,
        data: { size: 4, batchSize: 2 },
        checkpointEvery: 0,
        stepFn: (s) => ({ loss: s.step === 2 ? Number.NaN : 1 }),
      }),
    ).rejects.toThrow('non-finite loss NaN at step 3; last good checkpoint: none (no checkpoint saved yet)');
  });

  it('exact resume: 20 steps straight == crash at step 8 (last checkpoint 6) + resume, bit for bit', async () => {
    const straightDir = tmp();
    const straight = await runToy({ dir: straightDir, steps: TOY.totalSteps, checkpointEvery: 3 });
    const dir = tmp();
    await expect(runToy({ dir, steps: TOY.totalSteps, checkpointEvery: 3, crashAtStep: 8 })).rejects.toThrow(SimulatedCrash);
    expect(readMetrics(join(dir, 'metrics.jsonl')).map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const resumed = await runToy({ dir, steps: TOY.totalSteps, checkpointEvery: 3 });

    const a = readMetrics(join(straightDir, 'metrics.jsonl'));
    const b = readMetrics(join(dir, 'metrics.jsonl'));
    expect(b.map((r) => r.step)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(b.map((r) => r.loss)).toEqual(a.map((r) => r.loss)); // exact equality of float64 values
    expect(b).toEqual(a);
    expect(Array.from(resumed.toy.params['w'] as Float64Array)).toEqual(Array.from(straight.toy.params['w'] as Float64Array));
    expect(Array.from(resumed.toy.params['b'] as Float64Array)).toEqual(Array.from(straight.toy.params['b'] as Float64Array));
    expect(resumed.state).toEqual(straight.state);
    // The loss went down: the toy actually trains.
    expect(a[19]!.loss as number).toBeLessThan((a[0]!.loss as number) / 4);
  });
});
