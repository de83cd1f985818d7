// Seeded pseudo-random numbers: xoshiro128** (Blackman & Vigna) over four uint32 words, seeded by
// splitmix32. The state is plain data so that a training loop can save and restore it exactly.
// No Math.random() anywhere in the project: every consumer takes an Rng or a seed.

/** Serializable generator state: four uint32 words. */
export type RngState = readonly [number, number, number, number];

function splitmix32(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return (z ^ (z >>> 16)) >>> 0;
  };
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A deterministic random number generator. */
export class Rng {
  // The four state words in a Uint32Array: as number fields, values above 2^31 are heap numbers and
  // every step allocated (8M normals took ~20 s in a busy process, ~10x slower than this).
  private readonly st = new Uint32Array(4);

  private constructor(state: RngState) {
    this.st.set(state);
    if ((state[0] | state[1] | state[2] | state[3]) === 0) throw new Error('Rng state must not be all zero');
  }

  /** A generator from an integer seed (any safe integer; the high bits are folded in). */
  static fromSeed(seed: number): Rng {
    if (!Number.isSafeInteger(seed)) throw new Error(`seed must be a safe integer, got ${seed}`);
    const hi = Math.floor(seed / 2 ** 32) >>> 0;
    const next = splitmix32((seed >>> 0) ^ Math.imul(hi, 0x27d4eb2d));
    return new Rng([next(), next(), next(), next()]);
  }

  /** A generator continuing from a saved state. */
  static fromState(state: RngState): Rng {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new Error(`invalid Rng state ${JSON.stringify(state)}`);
    }
    return new Rng(state);
  }

  /** The current state; `Rng.fromState(r.state())` continues the same sequence. */
  state(): RngState {
    const st = this.st;
    return [st[0] as number, st[1] as number, st[2] as number, st[3] as number];
  }

  /** An independent generator derived from this one's next outputs and a stream label. */
  fork(stream = 0): Rng {
    const next = splitmix32((this.nextUint32() ^ Math.imul(stream + 1, 0x9e3779b1)) >>> 0);
    const a = this.nextUint32();
    return new Rng([next() ^ a, next(), next(), next() | 1].map((w) => w >>> 0) as unknown as RngState);
  }

  /** Uniform uint32. */
  nextUint32(): number {
    const st = this.st;
    const s1 = st[1] as number;
    const result = Math.imul(rotl(Math.imul(s1, 5) >>> 0, 7), 9) >>> 0;
    const t = s1 << 9;
    st[2] = (st[2] as number) ^ (st[0] as number);
    st[3] = (st[3] as number) ^ s1;
    st[1] = s1 ^ (st[2] as number);
    st[0] = (st[0] as number) ^ (st[3] as number);
    st[2] = (st[2] as number) ^ t;
    st[3] = rotl(st[3] as number, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform integer in [0, n), without modulo bias. */
  int(n: number): number {
    if (!Number.isInteger(n) || n <= 0 || n > 2 ** 32) throw new Error(`int(n) needs 1 <= n <= 2^32, got ${n}`);
    const limit = 2 ** 32 - (2 ** 32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /** Standard normal sample (Box–Muller; one value per call, so the state stays four words). */
  normal(): number {
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  /** Standard Gumbel sample, -log(E) with E ~ Exponential(1). */
  gumbel(): number {
    let u = 0;
    while (u === 0) u = this.uniform();
    return -Math.log(-Math.log(u));
  }

  /** A new array with the items in Fisher–Yates shuffled order. */
  shuffle<T>(items: readonly T[]): T[] {
    const out = items.slice();
    for (let i = out.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = out[i] as T;
      out[i] = out[j] as T;
      out[j] = tmp;
    }
    return out;
  }

  /** A permutation of 0..n-1. */
  permutation(n: number): number[] {
    return this.shuffle(Array.from({ length: n }, (_, i) => i));
  }
}
