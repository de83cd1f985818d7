// The 16-bit weight copies written by the fused AdamW (AdamWCopy, FusedParts.weightCopies) on the CPU:
// the op's copy is bit for bit Cast(p') in bfloat16 and float16; a small Llama trained in float16 with the
// copies gives bit for bit the losses, grad norms, weights and moments of the Cast path (same rounding),
// its step graph has no Cast of a master and one AdamWCopy per weight, and `load` refreshes the copies.
import { Graph } from '@latent-sft/graph';
import { describe, expect, it } from 'vitest';
import { adamwCopyCase, runOnce } from './testing.js';
import { tinyBatch, tinyObjective } from '../test/tiny-llama.js';
import { Trainer, type TrainerState, buildStepGraphs, graphOptimizer } from './index.js';

const cpu = { kind: 'cpu' } as const;

describe('AdamWCopy (CPU)', () => {
  for (const to of ['bfloat16', 'float16'] as const) {
    it(`${to}: p', m', v' equal AdamW's and the copy is bit for bit Cast(p', ${to})`, async () => {
      const n = (1 << 16) + 3; // two CPU chunks and a tail
      const c = adamwCopyCase(n, to, 7);
      const out = await runOnce(c.model, c.inputs, cpu);
      for (const k of ['p', 'm', 'v']) expect(out[`${k}c`]!.data, k).toEqual(out[`${k}a`]!.data);
      expect(out['copy']!.dtype).toBe(to);
      expect(out['copy']!.data).toEqual(out['cast']!.data);
      expect(new Set(out['copy']!.data as Uint16Array).size).toBeGreaterThan(1000); // not a constant
    });
  }

  it('bad input: one-line errors from the op table', () => {
    const g = new Graph('bad');
    const ins = ['p', 'g', 'm', 'v'].map((k) => g.input(k, 'float32', [4]));
    const sc = ['a', 'b', 'c', 'd'].map((k) => g.input(k, 'float32', []));
    expect(() => g.op('AdamWCopy', [...ins, ...sc], { beta2: 0.9, one_minus_beta1: 0.1, one_minus_beta2: 0.1, eps: 1e-8, to: 'float32' })).toThrow(
      /to must be bfloat16 or float16/,
    );
  });
});

describe('a small Llama in float16 with the fused AdamW writing the weight copies (CPU)', () => {
  const [Bt, Tt] = [2, 6];
  const { objective, init } = tinyObjective(Bt, Tt);
  const trainable = Object.keys(objective.trainable);
  const fused = (weightCopies: boolean) => ({ optimizer: true, softmax: true, weightCopies });

  it('the step graph reads copy.<p> instead of casting each master: no Cast of a master, one AdamWCopy update per weight (in one AdamWCopyMulti)', () => {
    const graph = (weightCopies: boolean) =>
      buildStepGraphs(
        {
          objective,
          optimizer: graphOptimizer({ kind: 'adamw', lr: 1e-3 }),
          clipNorm: 1,
          compute: 'float16',
          lossScale: false,
          fused: fused(weightCopies),
        },
        1,
      ).fused!;
    const [plain, copies] = [graph(false), graph(true)];
    const castsOfMasters = (g: Graph) => g.nodes.filter((n) => n.op === 'Cast' && trainable.includes(n.inputs[0] as string)).length;
    const count = (g: Graph, op: string) => g.nodes.filter((n) => n.op === op).length;
    expect(castsOfMasters(plain)).toBe(trainable.length);
    expect(castsOfMasters(copies)).toBe(0);
    expect(count(copies, 'Cast')).toBe(count(plain, 'Cast') - trainable.length);
    // one multi-tensor node for all the weights (FusedParts.multiTensor, on with the optimizer)
    expect(count(copies, 'AdamWCopyMulti')).toBe(1);
    expect(copies.nodes.find((n) => n.op === 'AdamWCopyMulti')!.outputs.filter((o) => o.startsWith('copy.')).length).toBe(trainable.length);
    expect(count(copies, 'AdamW') + count(copies, 'AdamWCopy') + count(plain, 'AdamWCopy') + count(plain, 'AdamWCopyMulti')).toBe(0);
    expect(count(plain, 'AdamWMulti')).toBe(1);
    expect(copies.inputs.filter((i) => i.name.startsWith('copy.')).length).toBe(trainable.length);
  });

  for (const lossScale of [null, 512] as const) {
    it(`losses, grad norms, weights and AdamW moments after 4 steps are bit for bit the Cast path's (loss scale ${lossScale})`, async () => {
      const run = async (weightCopies: boolean, steps: number, from?: TrainerState) => {
        const t = await Trainer.create(
          {
            objective,
            optimizer: { kind: 'adamw', lr: 3e-3 },
            schedule: { kind: 'constant' },
            totalSteps: 4,
            clipNorm: 1,
            precision: { compute: 'float16', lossScale },
            device: cpu,
            fusedKernels: fused(weightCopies),
          },
          { trainable: init, frozen: {} },
        );
        if (from !== undefined) await t.load(from);
        const log: number[] = [];
        for (let s = 0; s < steps; s++) {
          const r = await t.step([tinyBatch(Bt, Tt)]);
          log.push(r.loss, r.gradNorm);
        }
        const st = await t.state();
        await t.release();
        return { log, st };
      };
      const [a, b] = [await run(true, 4), await run(false, 4)];
      expect(a.log).toEqual(b.log);
      expect(a.log[6]!).toBeLessThan(a.log[0]!);
      for (const part of ['trainable', 'optimizer'] as const) {
        a.st[part].forEach((t, i) => expect(t.data, `${part} ${t.name}`).toEqual(b.st[part][i]!.data));
      }
      // Resume: 2 steps, state, a new trainer loads it (its copies re-made from the loaded masters), 2 more.
      const half = await run(true, 2);
      const rest = await run(true, 2, half.st);
      expect([...half.log, ...rest.log]).toEqual(a.log);
      rest.st.trainable.forEach((t, i) => expect(t.data, t.name).toEqual(a.st.trainable[i]!.data));
    });
  }
});
