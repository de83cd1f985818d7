// Prints how long `grad` takes to build the backward graph of a synthetic 16-layer decoder-like stack
// (RMSNorm from Pow/ReduceMean/Sqrt/Div, q/k/v/o projections, causal softmax attention, tanh MLP),
// plus node counts and serialization time. Run: pnpm exec tsx bench/backward-build.ts
import { performance } from 'node:perf_hooks';
import { Graph, type Tensor, grad, serialize } from '../src/index.js';

const LAYERS = 16;
const [B, T, D, H] = ['B', 'T', 256, 1024] as const;

function rmsnorm(g: Graph, x: Tensor, w: Tensor): Tensor {
  const ms = g.reduceMean(g.pow(x, g.scalar(2, 'float32')), [-1], true);
  return g.mul(g.div(x, g.sqrt(g.add(ms, g.scalar(1e-6, 'float32')))), w);
}

const t0 = performance.now();
const g = new Graph('decoder16');
let x = g.input('x', 'float32', [B, T, D]);
const mask = g.input('mask', 'float32', [T, T]);
const params: Tensor[] = [];
const p = (name: string, shape: number[]): Tensor => {
  const t = g.input(name, 'float32', shape);
  params.push(t);
  return t;
};
for (let l = 0; l < LAYERS; l++) {
  const h = rmsnorm(g, x, p(`l${l}.norm1`, [D]));
  const q = g.matmul(h, p(`l${l}.wq`, [D, D]));
  const k = g.matmul(h, p(`l${l}.wk`, [D, D]));
  const v = g.matmul(h, p(`l${l}.wv`, [D, D]));
  const s = g.add(g.mul(g.matmul(q, g.transpose(k, [0, 2, 1])), g.scalar(1 / 16, 'float32')), mask);
  x = g.add(x, g.matmul(g.matmul(g.softmax(s, -1), v), p(`l${l}.wo`, [D, D])));
  const h2 = rmsnorm(g, x, p(`l${l}.norm2`, [D]));
  x = g.add(x, g.matmul(g.tanh(g.matmul(h2, p(`l${l}.w1`, [D, H]))), p(`l${l}.w2`, [H, D])));
}
const loss = g.reduceMean(g.mul(x, x), undefined, false);
const forwardNodes = g.nodes.length;
const t1 = performance.now();
const grads = grad(g, loss, params);
g.output(loss, 'loss');
grads.forEach((t, i) => g.output(t, `${(params[i] as Tensor).name}.grad`));
g.prune();
const t2 = performance.now();
const bytes = serialize(g).model.length;
const t3 = performance.now();
console.log(`layers=${LAYERS} params=${params.length} forward nodes=${forwardNodes} total nodes after prune=${g.nodes.length}`);
console.log(
  `forward build ${(t1 - t0).toFixed(1)} ms, backward build (grad + prune) ${(t2 - t1).toFixed(1)} ms, serialize ${(t3 - t2).toFixed(1)} ms (${bytes} bytes)`,
);
