// Double-buffered state: a step graph reads state A and writes state B, the next step reads B and
// writes A; swapping rebinds, so no state is copied.
import { inputError } from '@latent-sft/core';
import type { DeviceBinding } from './device-binding.js';
import type { DeviceSession } from './device-session.js';
import { type DeviceTensor, fmt } from './device-tensor.js';
import type { HostTensor } from './session.js';

/**
 * One piece of double-buffered state: the step graph reads `input` and writes `output`. `current`
 * holds the latest value (read by the next step), `next` receives the step's result; swap() after
 * each step exchanges them, so no state is copied.
 */
export class StatePair {
  readonly input: string;
  readonly output: string;
  private a: DeviceTensor;
  private b: DeviceTensor;

  constructor(input: string, output: string, a: DeviceTensor, b: DeviceTensor) {
    if (a.dtype !== b.dtype || a.dims.join(',') !== b.dims.join(',')) {
      throw inputError({ field: `state '${input}'` }, `buffers differ: ${a.dtype}${fmt(a.dims)} vs ${b.dtype}${fmt(b.dims)}`);
    }
    if (a === b) throw inputError({ field: `state '${input}'` }, 'the two buffers must be different tensors');
    this.input = input;
    this.output = output;
    this.a = a;
    this.b = b;
  }

  /** Allocates both buffers in the session's memory, with `init` uploaded into `current`. */
  static create(session: DeviceSession, input: string, output: string, init: HostTensor): StatePair {
    const a = session.upload(init);
    const b = session.alloc(init.dtype, init.dims);
    return new StatePair(input, output, a, b);
  }

  /** The latest state (what the next step reads). */
  get current(): DeviceTensor {
    return this.a;
  }

  /** The buffer the next step writes. */
  get next(): DeviceTensor {
    return this.b;
  }

  /** Binds input -> current and output -> next. */
  bind(binding: DeviceBinding): void {
    binding.bindInput(this.input, this.a);
    binding.bindOutput(this.output, this.b);
  }

  /** Exchanges the buffers after a step: the step's output becomes current. */
  swap(): void {
    [this.a, this.b] = [this.b, this.a];
  }

  release(): void {
    this.a.release();
    this.b.release();
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
