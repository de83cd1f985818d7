// A counter-based hash in int64 graph ops (the op table has no bitwise ops), the random source of the
// LoRA inputs' seeded dropout (models' lora-graph.ts), and its fused form.
//   hashFlat:  x₀ = (index + offset) mod P,  P = 2³¹ − 1 (prime), s = seed mod P, offset = stream · 2654435761 mod P
//              4 rounds of  x ← (x · a_k + (s + c_k)) mod P ;  x ← (x · x + c'_k) mod P
//   (affine bijections + squaring for non-linearity; every product < 2⁶², no int64 overflow; mod is
//   x − (x / m)·m with Div truncating, which is C's %), uniform in [0, P).
//   hashWords: int32 words [count / w, w], each the two's complement int32 of x + 2³¹·(x' mod 2) with x from
//   the `lo` stream and x' from the `hi` stream (in [−2³¹, 2³¹): no wrap in the Cast).
// fuseHashWords rewrites a hashWords subgraph whose count is a constant into latent_sft.HashWords{count,
// width, offset_lo, offset_hi}(seed): one pass writing the int32 words, instead of ~90 int64 passes over
// count elements (the dropout column table is [2·modules, widest input]: 392 × 18,944 at the 7B shape).
// It matches by rebuilding hashWords with the candidate's count, seed and offsets and comparing the two
// subgraphs node for node (op, attributes, constant values, inputs), so nothing else can match.
import { Graph, type Node, type Tensor } from './graph.js';

export const HASH_P = 2147483647;
/** [a_k, c_k, c'_k] of the 4 rounds (runtime/native/src/fused_shared.h hashFlatValue keeps the same table). */
export const HASH_ROUNDS: ReadonlyArray<readonly [number, number, number]> = [
  [1103515245 % HASH_P, 12345, 374761393],
  [48271, 1013904223, 668265263],
  [69621, 2654435761 % HASH_P, 2246822519 % HASH_P],
  [1664525, 3266489917 % HASH_P, 1181783497],
];

/** The index offset of `stream`: stream · 2654435761 mod P (exact in BigInt). */
export function hashStreamOffset(stream: number): number {
  if (!Number.isSafeInteger(stream) || stream < 0) throw new Error(`hash stream must be a non-negative integer, got ${stream}`);
  return Number((BigInt(stream) * 2654435761n) % BigInt(HASH_P));
}

/** x mod m for int64 x (Div truncates: C's %). */
function mod(g: Graph, x: Tensor, m: Tensor): Tensor {
  return g.sub(x, g.mul(g.div(x, m), m));
}

/** Uniform int64 values in [0, P) for flat indices 0 … count − 1 ([count]), a pure function of (seed, offset, index). */
export function hashFlat(g: Graph, count: Tensor, seed: Tensor, offset: number): Tensor {
  const pT = g.scalar(HASH_P, 'int64');
  const idx = g.op1('Range', [g.scalar(0, 'int64'), count, g.scalar(1, 'int64')]);
  const s = mod(g, seed, pT);
  let x = mod(g, g.add(idx, g.scalar(offset, 'int64')), pT);
  for (const [a, c, c2] of HASH_ROUNDS) {
    x = mod(g, g.add(g.mul(x, g.scalar(a, 'int64')), g.add(s, g.scalar(c, 'int64'))), pT);
    x = mod(g, g.add(g.mul(x, x), g.scalar(c2, 'int64')), pT);
  }
  return x;
}

/** int32 words [count / w, w] from the streams at offsets `lo` and `hi` (see the file header). */
export function hashWords(g: Graph, count: Tensor, w: number, seed: Tensor, lo: number, hi: number): Tensor {
  const x = hashFlat(g, count, seed, lo);
  const bit = mod(g, hashFlat(g, count, seed, hi), g.scalar(2, 'int64'));
  const v = g.sub(x, g.mul(bit, g.scalar(2 ** 31, 'int64'))); // in [−2³¹, 2³¹)
  return g.reshape(g.cast(v, 'int32'), [-1, w]);
}

/** The number of a one-element int64 constant, or undefined. */
function int64Constant(g: Graph, name: string | undefined): number | undefined {
  const t = name === undefined ? undefined : g.initializers.get(name);
  return t !== undefined && t.dtype === 'int64' && t.data.length === 1 ? Number(t.data[0]) : undefined;
}

/**
 * Whether the value `a` of `ga` and `b` of `gb` are computed alike: the same constants, the leaves paired in
 * `leaves` (b's name → a's name), or nodes of the same op, attributes and (recursively) inputs.
 */
function sameValue(
  ga: Graph,
  pa: Map<string, Node>,
  a: string,
  gb: Graph,
  pb: Map<string, Node>,
  b: string,
  leaves: Map<string, string>,
  seen: Map<string, string>,
): boolean {
  if (a === '' || b === '') return a === b;
  const leaf = leaves.get(b);
  if (leaf !== undefined) return leaf === a;
  if (seen.get(b) === a) return true;
  const [ca, cb] = [ga.initializers.get(a), gb.initializers.get(b)];
  if (ca !== undefined || cb !== undefined) {
    if (ca === undefined || cb === undefined || ca.dtype !== cb.dtype || ca.dims.join() !== cb.dims.join() || ca.data.length !== cb.data.length) return false;
    for (let i = 0; i < ca.data.length; i++) if (ca.data[i] !== cb.data[i]) return false;
    return true;
  }
  const [na, nb] = [pa.get(a), pb.get(b)];
  if (na === undefined || nb === undefined || na.op !== nb.op || na.inputs.length !== nb.inputs.length) return false;
  if (na.outputs.indexOf(a) !== nb.outputs.indexOf(b)) return false;
  if (
    JSON.stringify(na.attrs, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) !==
    JSON.stringify(nb.attrs, (_, v) => (typeof v === 'bigint' ? v.toString() : v))
  )
    return false;
  seen.set(b, a);
  for (let i = 0; i < na.inputs.length; i++) if (!sameValue(ga, pa, na.inputs[i] as string, gb, pb, nb.inputs[i] as string, leaves, seen)) return false;
  return true;
}

/** The nodes that compute `root` (producers followed depth first, each once), not looking below a node `stop` accepts. */
function* nodesUnder(producer: Map<string, Node>, root: string, stop: (n: Node) => boolean = () => false): Generator<Node> {
  const stack = [root];
  const visited = new Set<string>();
  while (stack.length > 0) {
    const v = stack.pop() as string;
    if (visited.has(v)) continue;
    visited.add(v);
    const n = producer.get(v);
    if (n === undefined) continue;
    yield n;
    if (!stop(n)) for (const i of n.inputs) if (i !== '') stack.push(i);
  }
}

/** Every Range node under `root`. */
function rangesUnder(producer: Map<string, Node>, root: string): Node[] {
  const isRange = (n: Node) => n.op === 'Range';
  return [...nodesUnder(producer, root, isRange)].filter(isRange);
}

/** Rewrites every hashWords subgraph of `g` with a constant count (see the file header); returns how many. */
export function fuseHashWords(g: Graph): number {
  const producer = new Map<string, Node>();
  const consumers = new Map<string, Node[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const i of n.inputs) if (i !== '') consumers.set(i, [...(consumers.get(i) ?? []), n]);
  }
  let count = 0;
  for (const reshape of [...g.nodes]) {
    if (reshape.op !== 'Reshape') continue;
    const shape = g.initializers.get(reshape.inputs[1] as string);
    const cast = producer.get(reshape.inputs[0] as string);
    if (shape === undefined || shape.dtype !== 'int64' || shape.data.length !== 2 || Number(shape.data[0]) !== -1) continue;
    if (cast === undefined || cast.op !== 'Cast' || cast.attrs['to'] !== 'int32') continue;
    const w = Number(shape.data[1]);
    const sub = producer.get(cast.inputs[0] as string);
    if (sub === undefined || sub.op !== 'Sub') continue;
    // The two streams: the Range under the Sub's first input is lo's, the one under its second hi's.
    const [loRanges, hiRanges] = [rangesUnder(producer, sub.inputs[0] as string), rangesUnder(producer, sub.inputs[1] as string)];
    if (loRanges.length !== 1 || hiRanges.length !== 1) continue;
    const [lo, hi] = [loRanges[0] as Node, hiRanges[0] as Node];
    const n = int64Constant(g, lo.inputs[1]);
    if (n === undefined || lo.inputs[1] !== hi.inputs[1] || !(w >= 1) || n % w !== 0 || n < 0) continue;
    const offsetOf = (range: Node): number | undefined => {
      const add = (consumers.get(range.outputs[0] as string) ?? []).find((c) => c.op === 'Add');
      return add === undefined ? undefined : int64Constant(g, add.inputs[add.inputs[0] === range.outputs[0] ? 1 : 0]);
    };
    const [offLo, offHi] = [offsetOf(lo), offsetOf(hi)];
    // The seed: the int64 scalar that `s = seed mod P` reads (the first Div by P outside the index chain).
    const seedDiv = findSeed(g, producer, sub.inputs[0] as string);
    if (offLo === undefined || offHi === undefined || seedDiv === undefined) continue;
    // Rebuild hashWords with these and compare node for node.
    const ref = new Graph('hash_words_ref');
    const refCount = ref.input('count', 'int64', []);
    const refSeed = ref.input('seed', 'int64', []);
    const refOut = hashWords(ref, refCount, w, refSeed, offLo, offHi);
    const refProducer = new Map<string, Node>();
    for (const rn of ref.nodes) for (const o of rn.outputs) refProducer.set(o, rn);
    const leaves = new Map([
      [refCount.name, lo.inputs[1] as string],
      [refSeed.name, seedDiv],
    ]);
    if (!sameValue(g, producer, reshape.outputs[0] as string, ref, refProducer, refOut.name, leaves, new Map())) continue;
    const seed = g.value(seedDiv);
    // The Reshape to −1 left the row count symbolic; HashWords knows it (count / w).
    g.replaceNode(reshape, 'HashWords', [seed], { count: n, width: w, offset_lo: offLo, offset_hi: offHi }, { looseSymbolicDims: true });
    count++;
  }
  return count;
}

/** The seed of a hashFlat chain under `root`: the int64 scalar input of the `Div(seed, P)` not fed by a Range. */
function findSeed(g: Graph, producer: Map<string, Node>, root: string): string | undefined {
  for (const n of nodesUnder(producer, root)) {
    if (n.op !== 'Div' || int64Constant(g, n.inputs[1]) !== HASH_P) continue;
    const x = n.inputs[0] as string;
    const t = g.value(x);
    if (t.rank === 0 && t.dtype === 'int64' && rangesUnder(producer, x).length === 0) return x;
  }
  return undefined;
}
