// Collapse detection over a phase's metrics records (metrics.jsonl): a run whose gradient vanished while
// its loss stayed high, or whose loss ended above where it started, is flagged — its numbers must never
// be shown as a plain result. The rule (also in docs/pipeline.md):
//   records: those with a finite `loss` (and, for the gradient rule, a finite `gradNorm`), in step order;
//   w = max(1, min(5, ⌊n/4⌋)) records at each end (as the phase summaries' first/last window);
//   L0, L1 = mean loss of the first / last w records; G0 = median gradNorm of the first w records.
//   vanished gradient: from some record on, every later gradNorm < gradRatio · G0 (default 1e-3), that
//     tail holds at least minTailFraction (default 1/4) of the records, and L1 >= fitLossRatio · L0
//     (default 0.1) — a run that fits its data (loss down 10×) may legitimately end with tiny gradients;
//   loss rose: L1 > (1 + lossRiseMargin) · L0 (default margin 0.01, so batch noise on a flat loss is not
//     a rise).
//   collapsed = vanished gradient OR loss rose; fewer than 2 usable records give no verdict (not collapsed).
import type { MetricsRecord } from './metrics.js';

export interface CollapseOptions {
  /** A gradient norm below gradRatio × the starting one counts as vanished (default 1e-3). */
  gradRatio?: number;
  /** The vanished tail must hold at least this fraction of the records (default 0.25). */
  minTailFraction?: number;
  /** No vanished-gradient flag when the loss fell below fitLossRatio × its start (default 0.1). */
  fitLossRatio?: number;
  /** The loss "rose" when the end mean exceeds the start mean by more than this fraction (default 0.01). */
  lossRiseMargin?: number;
}

/** Why a phase was flagged. */
export type CollapseReason = 'vanished-gradient' | 'loss-rose';

/** The verdict of detectCollapse, with the numbers it was based on (written into phase summaries). */
export interface CollapseVerdict {
  collapsed: boolean;
  reasons: CollapseReason[];
  /** Records at each end averaged (w). */
  window: number;
  /** Mean loss of the first / last window (null without loss records). */
  lossStart: number | null;
  lossEnd: number | null;
  /** Median gradNorm of the first / last window (null without gradNorm records). */
  gradStart: number | null;
  gradEnd: number | null;
  /** First step of the vanished tail (null when the gradient did not vanish). */
  vanishedFromStep: number | null;
  /** One line for logs and tables, e.g. `vanished gradient from step 50 (86 → 2.7e-05); loss rose 6.21 → 7.57`. */
  message: string;
}

const DEFAULTS: Required<CollapseOptions> = { gradRatio: 1e-3, minTailFraction: 0.25, fitLossRatio: 0.1, lossRiseMargin: 0.01 };

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const g3 = (x: number): string => (Math.abs(x) >= 0.01 && Math.abs(x) < 1e4 ? x.toPrecision(3) : x.toExponential(1));

/** Applies the collapse rule (file header) to a phase's metrics records. */
export function detectCollapse(records: readonly MetricsRecord[], opts: CollapseOptions = {}): CollapseVerdict {
  const o = { ...DEFAULTS, ...opts };
  const sorted = [...records].sort((a, b) => a.step - b.step);
  const losses = sorted.filter((r) => num(r.loss));
  const grads = sorted.filter((r) => num(r.gradNorm));
  const n = losses.length;
  const window = Math.max(1, Math.min(5, Math.floor(n / 4)));
  const verdict: CollapseVerdict = {
    collapsed: false,
    reasons: [],
    window,
    lossStart: null,
    lossEnd: null,
    gradStart: null,
    gradEnd: null,
    vanishedFromStep: null,
    message: '',
  };
  if (n < 2) {
    verdict.message = 'too few records for a verdict';
    return verdict;
  }
  const l0 = mean(losses.slice(0, window).map((r) => r.loss as number));
  const l1 = mean(losses.slice(-window).map((r) => r.loss as number));
  verdict.lossStart = l0;
  verdict.lossEnd = l1;
  const parts: string[] = [];
  if (grads.length >= 2) {
    const gw = Math.max(1, Math.min(5, Math.floor(grads.length / 4)));
    const g0 = median(grads.slice(0, gw).map((r) => r.gradNorm as number));
    verdict.gradStart = g0;
    verdict.gradEnd = median(grads.slice(-gw).map((r) => r.gradNorm as number));
    // The longest tail of records all below the threshold.
    let from = grads.length;
    while (from > 0 && (grads[from - 1]!.gradNorm as number) < o.gradRatio * g0) from -= 1;
    const tail = grads.length - from;
    if (tail > 0 && tail >= o.minTailFraction * grads.length && l1 >= o.fitLossRatio * l0) {
      verdict.reasons.push('vanished-gradient');
      verdict.vanishedFromStep = grads[from]!.step;
      parts.push(`vanished gradient from step ${verdict.vanishedFromStep} (${g3(g0)} → ${g3(verdict.gradEnd)})`);
    }
  }
  if (l1 > (1 + o.lossRiseMargin) * l0) {
    verdict.reasons.push('loss-rose');
    parts.push(`loss rose ${g3(l0)} → ${g3(l1)}`);
  }
  verdict.collapsed = verdict.reasons.length > 0;
  verdict.message = verdict.collapsed ? parts.join('; ') : `healthy (loss ${g3(l0)} → ${g3(l1)})`;
  return verdict;
}
