// Shared helpers of the graph-side tests: host tensors, ORT CPU sessions of built graphs, and
// central finite differences of a scalar graph output.
import type { Rng } from '@latent-sft/core';
import { type Graph, serialize } from '@latent-sft/graph';
import { type HostTensor, Session } from '@latent-sft/runtime';

export const normals = (rng: Rng, n: number, scale = 1): number[] => Array.from({ length: n }, () => scale * rng.normal());
export const f64 = (dims: number[], v: ArrayLike<number>): HostTensor => ({ dtype: 'float64', dims, data: Float64Array.from(v) });
export const i64 = (dims: number[], v: number[]): HostTensor => ({ dtype: 'int64', dims, data: BigInt64Array.from(v, BigInt) });
export const bool = (dims: number[], v: boolean[]): HostTensor => ({ dtype: 'bool', dims, data: Uint8Array.from(v, Number) });
export const nums = (t: HostTensor | undefined): number[] => Array.from(t?.data ?? [], Number);
export const sessionOf = async (g: Graph): Promise<Session> => Session.create(serialize(g).model);

/** Central differences (step h) of scalar output `L` w.r.t. every element of float64 feed `name`. */
export async function fdGrad(s: Session, feeds: Record<string, HostTensor>, name: string, h: number): Promise<number[]> {
  const x = feeds[name] as HostTensor;
  const out: number[] = [];
  for (let j = 0; j < x.data.length; j++) {
    const at = async (delta: number): Promise<number> => {
      const data = Float64Array.from(x.data as Float64Array);
      data[j] = (data[j] as number) + delta;
      return nums((await s.run({ ...feeds, [name]: { ...x, data } }, ['L'])).L)[0] as number;
    };
    out.push(((await at(h)) - (await at(-h))) / (2 * h));
  }
  return out;
}
