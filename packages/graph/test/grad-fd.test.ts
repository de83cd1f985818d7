// Every gradient rule against central finite differences, one generic runner over cases.json, on
// ORT CPU. float64 cases: h = 1e-6; float32 cases (Erf has no float64 CPU kernel; Cast starts from
// float32): h = 1e-2 and looser tolerances.
import { describe, expect, it } from 'vitest';
import type { HostTensor } from '@latent-sft/runtime';
import { buildCaseGraph, caseFeeds, caseTable, generateCotangents, generateInputs, nums, sessionOf } from './harness.js';

const FD = {
  float64: { h: 1e-6, atol: 1e-6, rtol: 1e-5 },
  float32: { h: 1e-2, atol: 2e-3, rtol: 1e-2 },
} as const;

describe('gradient rules vs central finite differences', () => {
  for (const c of caseTable.cases) {
    it(`${c.name}`, async () => {
      const values = generateInputs(c);
      const { graph, wrt, outs } = buildCaseGraph(c, values);
      const cots = generateCotangents(outs, c.seed);
      await using s = await sessionOf(graph);
      const feeds = caseFeeds(c, values, cots);
      const res = await s.run(feeds);
      for (const i of wrt) {
        const x = values[i] as HostTensor;
        const tol = FD[x.dtype === 'float32' ? 'float32' : 'float64'];
        const data = x.data as Float64Array | Float32Array;
        const fd: number[] = [];
        for (let j = 0; j < data.length; j++) {
          const orig = data[j] as number;
          const at = async (v: number): Promise<number> => {
            const pert = data.slice();
            pert[j] = v;
            const out = await s.run({ ...feeds, [`x${i}`]: { ...x, data: pert } }, ['L']);
            return nums(out.L)[0] as number;
          };
          const hp = orig + tol.h - orig;
          const hm = orig - (orig - tol.h);
          const lp = await at(orig + tol.h);
          const lm = await at(orig - tol.h);
          fd.push((lp - lm) / (Math.fround(hp + hm) === 0 ? 1 : hp + hm));
        }
        expect(nums(res[`grad${i}`]), `${c.name}: d L / d x${i}`).toBeAllclose(fd, { atol: tol.atol, rtol: tol.rtol });
      }
    });
  }
});
