// The comparison the fused-op tests make between a graph rewritten into a fused op and the standard-op
// graph it replaces (both run on the CPU): outputs `y`, `loss` and the named gradients.
import { type Graph, type Tensor, grad, serialize } from '@latent-sft/graph';
import { expect } from 'vitest';
import { normwise } from '../src/testing.js';

/** Tolerances: y elementwise, loss and each gradient normwise (‖a − b‖ / ‖b‖) within `grad`. */
export interface FusedTolerance {
  y: { rtol: number; atol: number };
  grad: number;
}

/** Expects the fused run `a` to match the standard-op run `b`; the last gradient must not be trivially 0. */
export function expectLikeStandardOps(a: Record<string, Float32Array>, b: Record<string, Float32Array>, tol: FusedTolerance, grads: readonly string[]): void {
  expect(a['y']).toBeAllclose(b['y']!, tol.y);
  expect(a['loss']).toBeAllclose(b['loss']!, { rtol: tol.grad, atol: 0 });
  for (const k of grads) expect(normwise(a[k]!, b[k]!), `${k} normwise`).toBeLessThan(tol.grad);
  expect(Math.max(...Array.from(b[grads.at(-1) as string]!, Math.abs)), 'not trivially 0').toBeGreaterThan(1e-1);
}

/** The test graph's model: outputs y, loss and d<name> = ∂loss/∂wrt[name] for each entry, pruned. */
export function gradTestModel(g: Graph, loss: Tensor, y: Tensor, wrt: Record<string, Tensor>): Uint8Array {
  const names = Object.keys(wrt);
  const grads = grad(
    g,
    loss,
    names.map((n) => wrt[n] as Tensor),
  );
  g.output(y, 'y');
  g.output(loss, 'loss');
  names.forEach((n, i) => g.output(grads[i] as Tensor, `d${n}`));
  g.prune();
  return serialize(g).model;
}
