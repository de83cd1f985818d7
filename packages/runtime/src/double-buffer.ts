// State a step graph reads and writes: double-buffered (state A is read and state B written, the next
// step reads B and writes A; swapping rebinds, so no state is copied), or in place (one tensor bound as
// both the input and the output, which the step's kernel overwrites: half the memory, for graphs where
// that is safe — @latent-sft/train's in-place check).
import { inputError } from '@latent-sft/core';
import type { DeviceBinding } from './device-binding.js';
import type { DeviceSession } from './device-session.js';
import { type DeviceTensor, fmt } from './device-tensor.js';
import type { HostTensor } from './session.js';

/**
 * One piece of state: the step graph reads `input` and writes `output`. Double-buffered (two tensors):
 * `current` holds the latest value (read by the next step), `next` receives the step's result; swap()
 * after each step exchanges them. In place (one tensor, `b` null): input and output are bound to that
 * tensor, so the step writes the latest value where it read it; `next` is `current` and swap() does nothing.
 */
export class StatePair {
  readonly input: string;
  readonly output: string;
  /** One tensor bound as both input and output. */
  readonly inPlace: boolean;
  private a: DeviceTensor;
  private b: DeviceTensor;

  constructor(input: string, output: string, a: DeviceTensor, b: DeviceTensor | null) {
    if (b !== null && (a.dtype !== b.dtype || a.dims.join(',') !== b.dims.join(','))) {
      throw inputError({ field: `state '${input}'` }, `buffers differ: ${a.dtype}${fmt(a.dims)} vs ${b.dtype}${fmt(b.dims)}`);
    }
    if (a === b) throw inputError({ field: `state '${input}'` }, 'the two buffers must be different tensors (null: in place)');
    this.input = input;
    this.output = output;
    this.inPlace = b === null;
    this.a = a;
    this.b = b ?? a;
  }

  /**
   * Allocates the buffers in the session's memory (one when `inPlace`, else two), with `init`
   * uploaded into `current`.
   */
  static create(session: DeviceSession, input: string, output: string, init: HostTensor, inPlace = false): StatePair {
    const a = session.upload(init);
    return new StatePair(input, output, a, inPlace ? null : session.alloc(init.dtype, init.dims));
  }

  /** The latest state (what the next step reads). */
  get current(): DeviceTensor {
    return this.a;
  }

  /** The buffer the next step writes (`current` when in place). */
  get next(): DeviceTensor {
    return this.b;
  }

  /** Binds input -> current and output -> next. */
  bind(binding: DeviceBinding): void {
    binding.bindInput(this.input, this.a);
    binding.bindOutput(this.output, this.b);
  }

  /** Exchanges the buffers after a step: the step's output becomes current (nothing to do in place). */
  swap(): void {
    [this.a, this.b] = [this.b, this.a];
  }

  release(): void {
    this.a.release();
    if (!this.inPlace) this.b.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

/** All double-buffered state of a step graph, swapped and rebound together. */
export class DoubleBuffer {
  readonly pairs: readonly StatePair[];

  constructor(pairs: readonly StatePair[]) {
    const names = new Set<string>();
    for (const p of pairs) {
      for (const n of [p.input, p.output]) {
        if (names.has(n)) throw inputError({ field: `state '${n}'` }, 'named twice in one DoubleBuffer');
        names.add(n);
      }
    }
    this.pairs = Object.freeze([...pairs]);
  }

  /** Binds every pair's input to its current buffer and output to its next buffer. */
  bind(binding: DeviceBinding): void {
    for (const p of this.pairs) p.bind(binding);
  }

  /** Swaps every pair and rebinds (call after each run, before the next). */
  swap(binding?: DeviceBinding): void {
    for (const p of this.pairs) p.swap();
    if (binding !== undefined) this.bind(binding);
  }

  /** The current buffer of the pair whose input is `input`. */
  current(input: string): DeviceTensor {
    const p = this.pairs.find((q) => q.input === input);
    if (p === undefined) throw inputError({ field: `state '${input}'` }, `no such state (states: ${this.pairs.map((q) => q.input).join(', ')})`);
    return p.current;
  }

  release(): void {
    for (const p of this.pairs) p.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
