// Runtime probe (issue 9): a 2-layer MLP trains for N steps with its parameters double-buffered in
// device memory through the IO binding; the transfer counters show that only the batch goes up and
// only the loss comes down per step, whatever the parameter count. Also measures host<->device
// bandwidth, and tensor lifetimes around a session's release. Prints one JSON line per measurement ("PROBE {...}").
// Usage: tsx src/runtime-probe.ts --device cuda|cpu [--steps 100] [--mb 256]
import { parseArgs } from 'node:util';
import { buildTrainStep, crossEntropy, serialize, sgd, type Tensor } from '@latent-sft/graph';
import { Rng } from '@latent-sft/core';
import { DeviceSession, DoubleBuffer, StatePair, resetTransferStats, transferStats, type Device, type HostTensor } from '@latent-sft/runtime';

const { values } = parseArgs({
  options: {
    device: { type: 'string', default: 'cpu' },
    steps: { type: 'string', default: '100' },
    mb: { type: 'string', default: '256' },
  },
});
const device: Device = values.device === 'cuda' ? { kind: 'cuda', deviceId: 0 } : { kind: 'cpu' };
const steps = Number(values.steps);
const emit = (o: Record<string, unknown>) => process.stdout.write(`PROBE ${JSON.stringify(o)}\n`);

function randn(rng: Rng, dims: number[], scale: number): HostTensor {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.normal() * scale;
  return { dtype: 'float32', dims, data };
}

/** Trains an MLP din -> hidden -> classes; returns losses, per-step time and per-step bytes. */
function trainMlp(hidden: number, batch: number, din: number, classes: number) {
  const step = buildTrainStep({
    name: 'mlp',
    params: {
      w1: { dtype: 'float32', shape: [din, hidden] },
      b1: { dtype: 'float32', shape: [hidden] },
      w2: { dtype: 'float32', shape: [hidden, classes] },
      b2: { dtype: 'float32', shape: [classes] },
    },
    inputs: { x: { dtype: 'float32', shape: [batch, din] }, labels: { dtype: 'int64', shape: [batch] } },
    buildLoss: (g, p, i) => {
      const h = g.tanh(g.add(g.matmul(i.x as Tensor, p.w1 as Tensor), p.b1 as Tensor));
      return crossEntropy(g, g.add(g.matmul(h, p.w2 as Tensor), p.b2 as Tensor), i.labels as Tensor, -100);
    },
    optimizer: sgd(0.05),
  });
  const model = serialize(step.graph).model;
  const s = DeviceSession.create(model, { device, graphOptimizationLevel: 'all' });
  const rng = Rng.fromSeed(7);
  const init: Record<string, HostTensor> = {
    w1: randn(rng, [din, hidden], 1 / Math.sqrt(din)),
    b1: { dtype: 'float32', dims: [hidden], data: new Float32Array(hidden) },
    w2: randn(rng, [hidden, classes], 1 / Math.sqrt(hidden)),
    b2: { dtype: 'float32', dims: [classes], data: new Float32Array(classes) },
  };
  const state = new DoubleBuffer(Object.keys(init).map((n) => StatePair.create(s, n, `${n}.new`, init[n] as HostTensor)));
  const x = s.alloc('float32', [batch, din]);
  const labels = s.alloc('int64', [batch]);
  const b = s.createBinding().bindInput('x', x).bindInput('labels', labels).bindOutputToDevice('loss');
  for (const n of Object.keys(init)) b.bindOutputToDevice(`${n}.grad`);
  state.bind(b);
  // A fixed teacher makes the task learnable: labels = argmax of a random projection of x.
  const teacher = randn(rng, [din, classes], 1).data as Float32Array;
  const batchOf = (k: number) => {
    const r = Rng.fromSeed(1000 + k);
    const xs = randn(r, [batch, din], 1).data as Float32Array;
    const ls = new BigInt64Array(batch);
    for (let i = 0; i < batch; i++) {
      let best = 0,
        bestV = -Infinity;
      for (let c = 0; c < classes; c++) {
        let v = 0;
        for (let j = 0; j < din; j++) v += (xs[i * din + j] as number) * (teacher[j * classes + c] as number);
        if (v > bestV) {
          bestV = v;
          best = c;
        }
      }
      ls[i] = BigInt(best);
    }
    return { xs, ls };
  };
  const batches = Array.from({ length: 8 }, (_, k) => batchOf(k));
  const losses: number[] = [];
  let t0 = 0;
  let bytesAfterWarm = { up: 0, down: 0 };
  for (let k = 0; k < steps; k++) {
    if (k === 5) {
      // after warm-up: time and count the remaining steps
      resetTransferStats();
      t0 = performance.now();
    }
    const bt = batches[k % batches.length]!;
    x.upload(bt.xs);
    labels.upload(bt.ls);
    s.run(b);
    losses.push((b.output('loss').download() as Float32Array)[0] as number);
    state.swap(b);
  }
  const dtMs = (performance.now() - t0) / (steps - 5);
  const st = transferStats();
  bytesAfterWarm = { up: st.hostToDeviceBytes / (steps - 5), down: st.deviceToHostBytes / (steps - 5) };
  const params = din * hidden + hidden + hidden * classes + classes;
  state.release();
  b.release();
  s.release();
  return {
    hidden,
    params,
    paramBytes: params * 4,
    batchBytes: batch * din * 4 + batch * 8,
    lossFirst: losses[0],
    lossLast: losses.at(-1),
    stepMs: dtMs,
    upBytesPerStep: bytesAfterWarm.up,
    downBytesPerStep: bytesAfterWarm.down,
  };
}

function bandwidth(mb: number) {
  const s = DeviceSession.create(
    serialize(
      buildTrainStep({
        params: { p: { dtype: 'float32', shape: [1] } },
        inputs: {},
        buildLoss: (g, p) => g.reduceSum(g.mul(p.p as Tensor, p.p as Tensor), undefined, false),
      }).graph,
    ).model,
    { device },
  );
  const n = (mb * 2 ** 20) / 4;
  const host = new Float32Array(n).fill(1.5);
  const t = s.alloc('float32', [n]);
  t.upload(host); // warm
  const reps = 5;
  let t0 = performance.now();
  for (let i = 0; i < reps; i++) t.upload(host);
  const up = (reps * n * 4) / ((performance.now() - t0) / 1000) / 1e9;
  const out = new Float32Array(n);
  t0 = performance.now();
  for (let i = 0; i < reps; i++) t.downloadInto(out);
  const down = (reps * n * 4) / ((performance.now() - t0) / 1000) / 1e9;
  const ok = out[n - 1] === 1.5;
  t.release();
  s.release();
  return { mb, uploadGBs: up, downloadGBs: down, roundTripOk: ok };
}

/**
 * Lifetimes: a tensor outlives its session's release() (it keeps the session, and the allocator that
 * frees it, alive: it must still download, then free cleanly), and one is never released (freed, or
 * left, at process exit without a crash: the caller checks the exit status).
 */
async function releaseOrder() {
  const n = 1 << 24;
  const step = buildTrainStep({
    params: { p: { dtype: 'float32', shape: [n] } },
    inputs: {},
    optimizer: sgd(0.1),
    buildLoss: (g, p) => g.reduceSum(g.mul(p.p as Tensor, p.p as Tensor), undefined, false),
  });
  const model = serialize(step.graph).model;
  const s = DeviceSession.create(model, { device });
  const kept = s.upload({ dtype: 'float32', dims: [1 << 20], data: new Float32Array(1 << 20).fill(2.5) });
  s.upload({ dtype: 'float32', dims: [1 << 20], data: new Float32Array(1 << 20) }); // never released
  s.release();
  const back = kept.download() as Float32Array;
  // The last holder of the released session lets go while another session's run is in flight.
  const other = DeviceSession.create(model, { device });
  const b = other.createBinding();
  const p = other.upload({ dtype: 'float32', dims: [n], data: new Float32Array(n).fill(1) });
  b.bindInput('p', p);
  for (const o of other.outputs) b.bindOutputToDevice(o.name);
  const running = other.runAsync(b);
  kept.release();
  await running;
  const loss = (b.output(step.loss).download() as Float32Array)[0];
  b.release();
  p.release();
  other.release();
  return { downloadAfterSessionRelease: back[(1 << 20) - 1] === 2.5, releasedDuringOtherRun: loss === n };
}

emit({ probe: 'env', device: device.kind, steps });
emit({ probe: 'release-order', device: device.kind, ...(await releaseOrder()) });
for (const hidden of [256, 8192]) emit({ probe: 'mlp', device: device.kind, ...trainMlp(hidden, 256, 512, 16) });
emit({ probe: 'bandwidth', device: device.kind, ...bandwidth(Number(values.mb)) });
