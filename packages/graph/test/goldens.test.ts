// PyTorch goldens (tools/reference/graph_goldens.py → test/fixtures/graph-goldens.json): per-op
// forward values and gradients in float64 on the very inputs torch generated, and the 20-step SGD loss
// trajectories of the MLP and attention block in float32. The fixture is committed: a missing fixture,
// or a case of cases.json it does not hold (regenerate it after adding a case), fails.
import { readFileSync } from 'node:fs';
import type { HostTensor } from '@latent-sft/runtime';
import { describe, expect, it } from 'vitest';
import { type DType, typedFrom } from '../src/index.js';
import { buildCaseGraph, caseFeeds, caseTable, nums, sessionOf } from './harness.js';
import { attentionStep, mlpStep, train } from './models.js';

const FIXTURE = new URL('./fixtures/graph-goldens.json', import.meta.url);
const HINT = 'run `python tools/reference/graph_goldens.py` (PyTorch) and commit packages/graph/test/fixtures/graph-goldens.json';
/** float64 op goldens; float32 cases (Erf, Cast) use the float32 tolerance. */
const TOL = { float64: { atol: 1e-9, rtol: 1e-6 }, float32: { atol: 1e-5, rtol: 1e-4 } } as const;
/** SGD loss trajectories in float32 (different summation orders over 20 steps). */
const TRAJECTORY_TOL = { atol: 1e-6, rtol: 1e-4 };

interface Dumped {
  dtype: DType;
  shape: number[];
  data: number[];
}
interface Goldens {
  magic: string;
  version: number;
  torch: string;
  generator: string;
  cases: Record<string, { inputs: Dumped[]; cotangents: Dumped[]; outputs: Dumped[]; grads: Record<string, Dumped> }>;
  models: Record<'mlp' | 'attention', { params: Record<string, Dumped>; batch: Record<string, Dumped>; losses: number[] }>;
}
const host = (d: Dumped): HostTensor => ({ dtype: d.dtype, dims: d.shape, data: typedFrom(d.dtype, d.data) }) as HostTensor;
const hostAll = (r: Record<string, Dumped>): Record<string, HostTensor> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, host(v)]));

describe('PyTorch goldens', () => {
  const goldens = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Goldens;
  it('has the expected magic and version', () => {
    expect(goldens.magic, HINT).toBe('latent-sft-graph-goldens');
    expect(goldens.version, HINT).toBe(1);
  });
  for (const c of caseTable.cases) {
    const gc = Object.hasOwn(goldens.cases, c.name) ? goldens.cases[c.name] : undefined;
    it(`op ${c.name} matches torch ${goldens.torch}`, async () => {
      expect(gc, `case ${c.name} missing from the fixture: ${HINT}`).toBeDefined();
      if (gc === undefined) return;
      const values = gc.inputs.map(host);
      const { graph, wrt } = buildCaseGraph(c, values);
      await using s = await sessionOf(graph);
      const out = await s.run(caseFeeds(c, values, gc.cotangents.map(host)));
      gc.outputs.forEach((y, j) => expect(nums(out[`y${j}`]), `${c.name} y${j}`).toBeAllclose(y.data, TOL[c.dtype]));
      for (const i of wrt) {
        const gi = gc.grads[String(i)] as Dumped;
        expect(nums(out[`grad${i}`]), `${c.name} grad x${i}`).toBeAllclose(gi.data, TOL[gi.dtype === 'float32' ? 'float32' : 'float64']);
      }
    });
  }
  it('MLP 20-step SGD trajectory matches torch', async () => {
    const m = goldens.models.mlp;
    const losses = await train(mlpStep(caseTable.models.mlp), { params: hostAll(m.params), batch: hostAll(m.batch) }, caseTable.models.mlp.steps);
    expect(losses).toBeAllclose(m.losses, TRAJECTORY_TOL);
  });
  it('attention 20-step SGD trajectory matches torch', async () => {
    const m = goldens.models.attention;
    const losses = await train(
      attentionStep(caseTable.models.attention),
      { params: hostAll(m.params), batch: hostAll(m.batch) },
      caseTable.models.attention.steps,
    );
    expect(losses).toBeAllclose(m.losses, TRAJECTORY_TOL);
  });
});
