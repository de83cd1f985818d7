// Loss scaling for float16 training, on the host. The step graph multiplies the loss seed by
// `loss_scale` and divides the float32 gradients by it; the host looks at the (unscaled) global grad
// norm the graph returns:
//   dynamic: start at 2^16; a non-finite norm (an fp16 overflow in the backward) skips the update and
//            halves the scale; after `growthInterval` (2000) finite steps in a row the scale doubles.
//            This is torch.cuda.amp.GradScaler's default policy (init 2^16, backoff 0.5, growth 2,
//            interval 2000). Like DeepSpeed (min_loss_scale 1) the scale never drops below `minScale`:
//            an overflow at the minimum is an error, since halving can no longer help.
//   static:  a fixed scale; an overflow skips the update and keeps the scale.
// bfloat16 has float32's exponent range and needs no scaling (lossScale null).
import { NonFiniteError } from './metrics.js';

/** The scaler's state, saved with checkpoints. */
export interface LossScaleState {
  scale: number;
  /** Finite steps since the last change of scale. */
  goodSteps: number;
}

export interface DynamicLossScaleOptions {
  /** Default 2^16. */
  initScale?: number;
  /** Default 2000. */
  growthInterval?: number;
  /** Default 1. */
  minScale?: number;
  /** Default 2^24. */
  maxScale?: number;
}

/** A loss scale: `scale` for the next step, `update(finite)` after it. */
export class LossScaler {
  private s: LossScaleState;

  private constructor(
    readonly mode: 'dynamic' | 'static',
    scale: number,
    private readonly opts: Required<DynamicLossScaleOptions>,
  ) {
    this.s = { scale, goodSteps: 0 };
  }

  static dynamic(opts: DynamicLossScaleOptions = {}): LossScaler {
    const o: Required<DynamicLossScaleOptions> = {
      initScale: opts.initScale ?? 2 ** 16,
      growthInterval: opts.growthInterval ?? 2000,
      minScale: opts.minScale ?? 1,
      maxScale: opts.maxScale ?? 2 ** 24,
    };
    if (!(o.initScale > 0 && Number.isFinite(o.initScale))) throw new Error(`initial loss scale must be finite and > 0, got ${o.initScale}`);
    if (!Number.isInteger(o.growthInterval) || o.growthInterval < 1) throw new Error(`growthInterval must be an integer >= 1, got ${o.growthInterval}`);
    if (!(o.minScale > 0 && o.minScale <= o.initScale && o.initScale <= o.maxScale)) {
      throw new Error(`need 0 < minScale <= initScale <= maxScale, got ${o.minScale}, ${o.initScale}, ${o.maxScale}`);
    }
    return new LossScaler('dynamic', o.initScale, o);
  }

  static fixed(scale: number): LossScaler {
    if (!(scale > 0 && Number.isFinite(scale))) throw new Error(`loss scale must be finite and > 0, got ${scale}`);
    return new LossScaler('static', scale, { initScale: scale, growthInterval: 1, minScale: scale, maxScale: scale });
  }

  get scale(): number {
    return this.s.scale;
  }

  state(): LossScaleState {
    return { ...this.s };
  }

  load(state: LossScaleState): void {
    if (!(state.scale > 0 && Number.isFinite(state.scale))) throw new Error(`loss scale must be finite and > 0, got ${state.scale}`);
    if (!Number.isInteger(state.goodSteps) || state.goodSteps < 0) throw new Error(`loss scale goodSteps must be an integer >= 0, got ${state.goodSteps}`);
    this.s = { ...state };
  }

  /**
   * Records a step whose gradient norm was `gradNorm`; returns true when the update must be skipped
   * (non-finite norm). Throws NonFiniteError when a dynamic scale is already at its minimum.
   */
  update(gradNorm: number, step: number): boolean {
    if (Number.isFinite(gradNorm)) {
      if (this.mode === 'dynamic' && ++this.s.goodSteps >= this.opts.growthInterval) {
        this.s = { scale: Math.min(this.s.scale * 2, this.opts.maxScale), goodSteps: 0 };
      }
      return false;
    }
    if (this.mode === 'dynamic') {
      if (this.s.scale <= this.opts.minScale) {
        throw new NonFiniteError(`non-finite gradients at step ${step} with the loss scale at its minimum ${this.opts.minScale}`, step);
      }
      this.s = { scale: Math.max(this.s.scale / 2, this.opts.minScale), goodSteps: 0 };
    }
    return true;
  }
}
