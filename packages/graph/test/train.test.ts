// Training through built graphs on ORT CPU: 20 SGD steps of a 2-layer MLP and of a causal attention
// block; the loss must fall. (Trajectories against PyTorch live in goldens.test.ts.)
import { describe, expect, it } from 'vitest';
import { caseTable } from './harness.js';
import { attentionData, attentionStep, mlpData, mlpStep, train } from './models.js';

/** Final loss must be below this fraction of the first. */
const MLP_DROP = 0.7;
const ATTENTION_DROP = 0.9;

describe('training steps', () => {
  it('2-layer MLP with cross-entropy (ignore_index) learns under SGD', async () => {
    const c = caseTable.models.mlp;
    const losses = await train(mlpStep(c), mlpData(c), c.steps);
    expect(losses).toHaveLength(c.steps);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[c.steps - 1] as number).toBeLessThan((losses[0] as number) * MLP_DROP);
    for (let i = 1; i < losses.length; i++) expect(losses[i] as number).toBeLessThan(losses[i - 1] as number);
  });

  it('1-layer causal attention block learns under SGD', async () => {
    const c = caseTable.models.attention;
    const losses = await train(attentionStep(c), attentionData(c), c.steps);
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[c.steps - 1] as number).toBeLessThan((losses[0] as number) * ATTENTION_DROP);
  });

  it('the train-step graph has the documented inputs and outputs', () => {
    const step = mlpStep(caseTable.models.mlp);
    expect(step.graph.inputs.map((t) => t.name)).toEqual(['w1', 'b1', 'w2', 'b2', 'x', 'labels']);
    expect(step.graph.outputs.map((t) => t.name)).toEqual(['loss', 'w1.grad', 'w1.new', 'b1.grad', 'b1.new', 'w2.grad', 'w2.new', 'b2.grad', 'b2.new']);
  });
});
