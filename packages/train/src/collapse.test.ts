// The collapse rule on the committed metrics of the first Table-1 run (docs/results/multiplication): the
// w/o-LTSuM phase-1 encoder (gradient norm ~86 → 6e-3 at step 50 → ~1e-5, CE up to 7.6) is flagged,
// the healthy r4 encoder (CE 6.6 → 3.8) and every other committed phase are not.
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { detectCollapse } from './collapse.js';
import { readMetrics, type MetricsRecord } from './metrics.js';

const results = (rel: string) => readMetrics(fileURLToPath(new URL(`../../../docs/results/${rel}/metrics.jsonl`, import.meta.url)));

describe('detectCollapse on committed runs', () => {
  it('flags the old w/o-LTSuM phase-1 encoder for both reasons', () => {
    const v = detectCollapse(results('multiplication/r4-no-ltsum/phase1-encoder'));
    expect(v.collapsed).toBe(true);
    expect(v.reasons).toEqual(['vanished-gradient', 'loss-rose']);
    // 71 records → window 5: steps 1–40 and 660–700. Median start grad of (85.5, 113, 130, 59.3, 0.87) = 85.5.
    expect(v.window).toBe(5);
    expect(v.gradStart).toBeAllclose(85.54278564453125, { rtol: 1e-12 });
    // From step 50 (grad 6.2e-3 < 0.0855) every record stays below 1e-3 × 85.5.
    expect(v.vanishedFromStep).toBe(50);
    expect(v.lossStart).toBeAllclose(6.18, { atol: 0.01 });
    expect(v.lossEnd).toBeAllclose(7.6, { atol: 0.01 });
    expect(v.message).toMatch(/^vanished gradient from step 50 \(85\.5 → .*\); loss rose 6\.18 → 7\.60$/);
  });

  it('does not flag the healthy r4 encoder, nor its w/o-LTSuM decoder, union and phase 2', () => {
    const r4 = detectCollapse(results('multiplication/r4/phase1-encoder'));
    expect([r4.collapsed, r4.reasons, r4.vanishedFromStep]).toEqual([false, [], null]);
    expect(r4.lossStart).toBeAllclose(5.67, { atol: 0.01 });
    expect(r4.lossEnd).toBeAllclose(3.79, { atol: 0.01 });
    for (const p of ['phase1-decoder', 'phase1-union', 'phase2']) {
      expect(detectCollapse(results(`multiplication/r4-no-ltsum/${p}`)).collapsed).toBe(false);
    }
    // CoT-SFT fits its data (loss 5.8 → 8.6e-4): small final gradients there are not a collapse.
    expect(detectCollapse(results('multiplication/cot')).collapsed).toBe(false);
  });
});

describe('detectCollapse rule', () => {
  const run = (loss: (i: number) => number, grad: (i: number) => number, n = 20): MetricsRecord[] =>
    Array.from({ length: n }, (_, i) => ({ step: (i + 1) * 10, loss: loss(i), gradNorm: grad(i) }));

  it('flags a vanished gradient with a stuck loss, but not one with a fitted loss', () => {
    // Window 5; start grad 10; from record 10 on, grad 1e-3 × 10 / 2 = 5e-3 (< 1e-2): tail of 10 ≥ 5.
    const stuck = detectCollapse(
      run(
        () => 3,
        (i) => (i < 10 ? 10 : 5e-3),
      ),
    );
    expect([stuck.collapsed, stuck.reasons, stuck.vanishedFromStep]).toEqual([true, ['vanished-gradient'], 110]);
    // Loss 3 → 0.01 (below 0.1 × start): a fitted run may end with tiny gradients.
    expect(
      detectCollapse(
        run(
          (i) => (i < 10 ? 3 : 0.01),
          (i) => (i < 10 ? 10 : 5e-3),
        ),
      ).collapsed,
    ).toBe(false);
    // A tail shorter than a quarter of the records (4 of 20) is not "stays there".
    expect(
      detectCollapse(
        run(
          () => 3,
          (i) => (i < 16 ? 10 : 5e-3),
        ),
      ).collapsed,
    ).toBe(false);
    // Above the threshold (2e-2 > 1e-2): not vanished.
    expect(
      detectCollapse(
        run(
          () => 3,
          (i) => (i < 10 ? 10 : 2e-2),
        ),
      ).collapsed,
    ).toBe(false);
  });

  it('flags a loss that ends more than 1 % above its start, not one within the margin', () => {
    const rose = detectCollapse(
      run(
        (i) => (i < 10 ? 2 : 2.1),
        () => 1,
      ),
    );
    expect([rose.collapsed, rose.reasons]).toEqual([true, ['loss-rose']]);
    expect(rose.message).toBe('loss rose 2.00 → 2.10');
    expect(
      detectCollapse(
        run(
          (i) => (i < 10 ? 2 : 2.01),
          () => 1,
        ),
      ).collapsed,
    ).toBe(false);
  });

  it('gives no verdict on fewer than two records and skips non-finite ones', () => {
    expect(detectCollapse([{ step: 1, loss: 5, gradNorm: 1 }])).toMatchObject({ collapsed: false, message: 'too few records for a verdict' });
    const v = detectCollapse([{ step: 1, loss: 5, gradNorm: 1 }, { step: 2 }, { step: 3, loss: 4, gradNorm: 1 }]);
    expect([v.collapsed, v.lossStart, v.lossEnd]).toEqual([false, 5, 4]);
  });
});
