// Builds (does not run) the Llama-3.2-1B-shaped decoder graph with parameters as graph inputs, its
// backward (grad w.r.t. every parameter) and serializes it; prints times and node counts.
// Usage (from packages/models): pnpm exec tsx --conditions=@latent-sft/source bench/decoder-build.ts
import { Graph, grad, serialize } from '@latent-sft/graph';
import { buildDecoder, causalLmLoss, llama32_1b } from '../src/index.js';

const ms = (t0: bigint): string => `${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(0)} ms`;
const config = llama32_1b();
for (const run of [1, 2, 3]) {
  const g = new Graph('llama32_1b_train');
  let t = process.hrtime.bigint();
  const dec = buildDecoder(g, config, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, markOutputs: false });
  const loss = causalLmLoss(g, dec.logits as NonNullable<typeof dec.logits>, g.input('labels', 'int64', ['batch', 'seq']));
  const forward = `forward build ${ms(t)}, ${g.nodes.length} nodes`;
  t = process.hrtime.bigint();
  const names = Object.keys(dec.params);
  const grads = grad(
    g,
    loss,
    names.map((n) => dec.params[n] as NonNullable<(typeof dec.params)[string]>),
  );
  g.output(loss, 'loss');
  names.forEach((n, i) => g.output(grads[i] as NonNullable<(typeof grads)[number]>, `${n}.grad`));
  g.prune();
  const backward = `backward build + prune ${ms(t)}, ${g.nodes.length} nodes after prune`;
  t = process.hrtime.bigint();
  const bytes = serialize(g).model.length;
  process.stdout.write(
    `run ${run}: ${forward}; ${backward}; serialize ${ms(t)} (${(bytes / 1e6).toFixed(2)} MB, ${names.length} params, ${g.initializers.size} initializers)\n`,
  );
}
