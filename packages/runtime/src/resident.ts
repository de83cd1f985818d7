// A device session whose constant inputs (weights) are uploaded once and stay bound, with Session's run
// interface for the rest: each run uploads only its feeds and downloads only the outputs asked for. For
// inference loops over many batches with large weights (cache-latents at 7B: the weights no longer cross
// to the device with every batch).
import { inputError } from '@latent-sft/core';
import { DeviceSession, type DeviceSessionOptions } from './device-session.js';
import type { DeviceTensor } from './device-tensor.js';
import type { HostTensor } from './session.js';

/** A model with resident inputs (see the file header). Release it when done. */
export class ResidentSession {
  private constructor(
    private readonly session: DeviceSession,
    private readonly resident: Map<string, DeviceTensor>,
  ) {}

  /**
   * Loads `model` and uploads `resident` (inputs by name) once. A value may be a function that reads the
   * tensor: it is called just before its upload, so the host holds one such tensor at a time (weights read
   * from files one by one, not the whole model at once).
   */
  static create(model: Uint8Array, resident: Readonly<Record<string, HostTensor | (() => HostTensor)>>, opts: DeviceSessionOptions = {}): ResidentSession {
    const session = DeviceSession.create(model, opts);
    const held = new Map<string, DeviceTensor>();
    try {
      for (const [n, t] of Object.entries(resident)) {
        session.input(n); // a name the model lacks: one line listing its inputs
        held.set(n, session.upload(typeof t === 'function' ? t() : t));
      }
    } catch (e) {
      for (const t of held.values()) t.release();
      session.release();
      throw e;
    }
    return new ResidentSession(session, held);
  }

  /** Runs with the resident inputs and `feeds` (the other inputs); returns `outputs` (default all) as host tensors. */
  async run(feeds: Record<string, HostTensor>, outputs?: readonly string[]): Promise<Record<string, HostTensor>> {
    for (const n of Object.keys(feeds)) if (this.resident.has(n)) throw inputError({ field: `feeds.${n}` }, 'is a resident input (uploaded at create)');
    const names = outputs ?? this.session.outputs.map((o) => o.name);
    using b = this.session.createBinding();
    for (const [n, t] of this.resident) b.bindInput(n, t);
    const up: DeviceTensor[] = [];
    try {
      for (const [n, t] of Object.entries(feeds)) {
        const d = this.session.upload(t);
        up.push(d);
        b.bindInput(n, d);
      }
      for (const n of names) b.bindOutputToDevice(n);
      await this.session.runAsync(b);
      const outs = b.outputs();
      try {
        const out: Record<string, HostTensor> = {};
        for (const [n, t] of Object.entries(outs)) if (names.includes(n)) out[n] = t.toHost();
        return out;
      } finally {
        for (const t of Object.values(outs)) t.release();
      }
    } finally {
      for (const t of up) t.release();
    }
  }

  /** Frees the resident inputs and the session. */
  async release(): Promise<void> {
    for (const t of this.resident.values()) t.release();
    this.resident.clear();
    this.session.release();
  }
}
