// Learning-rate schedules as pure functions of the optimizer step, the lambda of torch's LambdaLR.
//
// `step` counts optimizer updates already taken (0 for the first update), exactly like LambdaLR's
// `last_epoch` when the scheduler is stepped after each optimizer.step(); lrAt(step) is the lr used by
// update number step+1. With w = warmupSteps, T = totalSteps, peak = peakLr:
//   warmup (step < w):  lr = peak * step / w                      (so the first update uses lr 0)
//   linear (step >= w): lr = minLr + (peak - minLr) * max(0, (T - step) / max(1, T - w))
//   cosine (step >= w): lr = minLr + (peak - minLr) * 0.5 * (1 + cos(pi * min(1, (step - w) / max(1, T - w))))
// With minLr = 0 these are HF get_linear_schedule_with_warmup / get_cosine_schedule_with_warmup
// (num_cycles 0.5). HF's cosine is not clamped past T (it rises again); ours stays at minLr.
// DeepSpeed WarmupDecayLR (the effective schedule of the reference runs, spec §3.6) with
// warmup_type 'linear' and warmup_min_lr 0 gives the same numbers with last_batch_iteration = step:
// gamma = step / w during warmup, then max(0, (T - step) / max(1, T - w)); DeepSpeed clamps
// w to at least 2 and its default warmup_type is 'log' (not implemented here).
// warmupStepsFromRatio(T, 0.05) = ceil(T * 0.05), as HF TrainingArguments.get_warmup_steps.

/** An LR schedule (the peak lr is passed separately to lrAt). */
export type LrSchedule =
  | { kind: 'constant' }
  | { kind: 'linear'; warmupSteps: number; totalSteps: number; minLr?: number }
  | { kind: 'cosine'; warmupSteps: number; totalSteps: number; minLr?: number };

function checkSchedule(s: LrSchedule, peakLr: number): void {
  if (!(Number.isFinite(peakLr) && peakLr >= 0)) throw new Error(`peak lr must be finite and >= 0, got ${peakLr}`);
  if (s.kind === 'constant') return;
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0) throw new Error(`warmupSteps must be an integer >= 0, got ${s.warmupSteps}`);
  if (!Number.isInteger(s.totalSteps) || s.totalSteps < 1) throw new Error(`totalSteps must be an integer >= 1, got ${s.totalSteps}`);
  const minLr = s.minLr ?? 0;
  if (!(minLr >= 0 && minLr <= peakLr)) throw new Error(`minLr must be in [0, peak lr ${peakLr}], got ${minLr}`);
}

/** The learning rate of update number step+1 (step = updates already taken, from 0). */
export function lrAt(step: number, schedule: LrSchedule, peakLr: number): number {
  checkSchedule(schedule, peakLr);
  if (!Number.isInteger(step) || step < 0) throw new Error(`step must be an integer >= 0, got ${step}`);
  switch (schedule.kind) {
    case 'constant':
      return peakLr;
    case 'linear':
    case 'cosine': {
      const w = schedule.warmupSteps;
      const t = schedule.totalSteps;
      if (step < w) return (peakLr * step) / w;
      const minLr = schedule.minLr ?? 0;
      const decay =
        schedule.kind === 'linear'
          ? Math.max(0, (t - step) / Math.max(1, t - w))
          : 0.5 * (1 + Math.cos(Math.PI * Math.min(1, (step - w) / Math.max(1, t - w))));
      return minLr + (peakLr - minLr) * decay;
    }
    default: {
      const never: never = schedule;
      throw new Error(`unknown schedule ${JSON.stringify(never)}`);
    }
  }
}

/** Warmup steps from a ratio of the total: ceil(total * ratio), as HF. */
export function warmupStepsFromRatio(totalSteps: number, ratio: number): number {
  if (!Number.isInteger(totalSteps) || totalSteps < 0) throw new Error(`totalSteps must be an integer >= 0, got ${totalSteps}`);
  if (!(ratio >= 0 && ratio <= 1)) throw new Error(`warmup ratio must be in [0, 1], got ${ratio}`);
  return Math.ceil(totalSteps * ratio);
}
