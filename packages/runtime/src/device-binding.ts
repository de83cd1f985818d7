// IO bindings: a session's inputs and outputs bound to device tensors (dtype and fixed dims checked
// against the model), or outputs left to ORT to allocate on a device at each run.
import { inputError } from '@latent-sft/core';
import type { DeviceSession, ValueInfo } from './device-session.js';
import { DeviceTensor, fmt } from './device-tensor.js';
import type { NativeBinding } from './native.js';
import type { Device } from './session.js';

function checkAgainst(kind: 'input' | 'output', info: ValueInfo, t: DeviceTensor): void {
  const field = `${kind} '${info.name}'`;
  t.handle(field);
  if (info.dtype !== t.dtype) throw inputError({ field }, `tensor dtype ${t.dtype} does not match the model's ${info.dtype}`);
  const fits = info.dims.length === t.dims.length && info.dims.every((d, i) => d < 0 || d === t.dims[i]);
  if (!fits) throw inputError({ field }, `tensor dims ${fmt(t.dims)} do not match the model's ${fmt(info.dims, info.symbols)}`);
}

/** Inputs and outputs of one session bound to device tensors, checked against the model. */
export class DeviceBinding {
  readonly session: DeviceSession;
  private native: NativeBinding | undefined;
  private readonly boundOutputs = new Map<string, DeviceTensor>();

  /** @internal Use `session.createBinding()`. */
  constructor(session: DeviceSession, native: NativeBinding) {
    this.session = session;
    this.native = native;
  }

  /** @internal */
  handle(): NativeBinding {
    if (this.native === undefined) throw inputError({ field: 'binding' }, 'IO binding was released');
    return this.native;
  }

  /** Binds a model input to a tensor (dtype and fixed dims must match the model). */
  bindInput(name: string, t: DeviceTensor): this {
    checkAgainst('input', this.session.input(name), t);
    this.handle().bindInput(name, t.handle(`input '${name}'`));
    return this;
  }

  /** Binds a model output to a preallocated tensor, which the run writes in place. */
  bindOutput(name: string, t: DeviceTensor): this {
    checkAgainst('output', this.session.output(name), t);
    this.handle().bindOutput(name, t.handle(`output '${name}'`));
    this.boundOutputs.set(name, t);
    return this;
  }

  /** Lets ORT allocate an output on `device` (default: the session's device) at each run. */
  bindOutputToDevice(name: string, device: Device = this.session.device): this {
    this.session.output(name);
    this.handle().bindOutputToDevice(name, device.kind, device.kind === 'cuda' ? (device.deviceId ?? 0) : 0);
    this.boundOutputs.delete(name);
    return this;
  }

  clearInputs(): void {
    this.handle().clearInputs();
  }

  clearOutputs(): void {
    this.handle().clearOutputs();
    this.boundOutputs.clear();
  }

  /** Waits for input copies to the device to finish (ORT SynchronizeBoundInputs). */
  synchronizeInputs(): void {
    this.handle().synchronizeInputs();
  }

  /** Waits for the outputs of the last run to be ready (ORT SynchronizeBoundOutputs). */
  synchronizeOutputs(): void {
    this.handle().synchronizeOutputs();
  }

  /**
   * The outputs of the last run, by name. A preallocated output comes back as the tensor that was
   * bound; an ORT-allocated one as a new DeviceTensor the caller owns (release it when done).
   */
  outputs(): Record<string, DeviceTensor> {
    const out: Record<string, DeviceTensor> = {};
    for (const { name, tensor } of this.handle().outputs()) {
      const bound = this.boundOutputs.get(name);
      if (bound !== undefined && !bound.released) {
        tensor?.release();
        out[name] = bound;
      } else if (tensor !== null) {
        out[name] = new DeviceTensor(tensor);
      }
    }
    return out;
  }

  /** One output of the last run (see outputs()); throws when it is not bound or not yet computed. */
  output(name: string): DeviceTensor {
    const o = this.outputs();
    const t = o[name];
    if (t === undefined) throw inputError({ field: `output '${name}'` }, 'not bound or not computed yet (run the session first)');
    for (const [k, v] of Object.entries(o)) if (k !== name && !this.boundOutputs.has(k)) v.release();
    return t;
  }

  /** Frees the binding; the tensors bound to it are not released. */
  release(): void {
    const n = this.native;
    this.native = undefined;
    this.boundOutputs.clear();
    n?.release();
  }

  [Symbol.dispose](): void {
    this.release();
  }
}
