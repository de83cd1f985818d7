// A process group: `worldSize` processes (ranks 0..worldSize-1) that call the same collectives in the
// same order. The Trainer all-reduces its summed gradients through it between the gradient and the
// update graphs; the phase runners broadcast rank 0's start state through it. Backends: TCP on the
// CPU (tcp.ts); an NCCL backend (device buffers, the native addon) is to implement the same interface.
import { inputError } from '@latent-sft/core';

/** The collectives of a group of ranks (every rank calls each one, in the same order, awaited one at a time). */
export interface ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  /**
   * In place: every array becomes the element-wise mean over the ranks, the same bits on every rank
   * (summed in rank order 0, 1, …, in float64, divided by worldSize, stored in the array's type).
   * Every rank passes arrays of the same types and lengths in the same order.
   */
  allReduceMean(arrays: ReadonlyArray<Float32Array | Float64Array>): Promise<void>;
  /** `root` passes the bytes (the others null); every rank gets root's bytes. */
  broadcast(data: Uint8Array | null, root?: number): Promise<Uint8Array>;
  /** Returns once every rank has called it. */
  barrier(): Promise<void>;
  /** Closes the connections (after the last collective). */
  close(): Promise<void>;
}

/** Where a rank finds the group: its rank, the world size and rank 0's address (torchrun's variables). */
export interface RankInfo {
  rank: number;
  worldSize: number;
  /** The rank on its node (which GPU it would drive). */
  localRank: number;
  masterAddr: string;
  masterPort: number;
}

/** The torchrun-style environment variables a launcher sets for one rank. */
export function rankEnv(r: RankInfo): Record<string, string> {
  return {
    RANK: String(r.rank),
    WORLD_SIZE: String(r.worldSize),
    LOCAL_RANK: String(r.localRank),
    MASTER_ADDR: r.masterAddr,
    MASTER_PORT: String(r.masterPort),
  };
}

/**
 * The rank a launcher started this process as (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
 * MASTER_PORT, as torchrun sets them), or null when RANK is unset. The app passes its environment.
 */
export function rankFromEnv(env: Readonly<Record<string, string | undefined>>): RankInfo | null {
  if (env['RANK'] === undefined) return null;
  const int = (name: string, min: number, fallback?: string): number => {
    const s = env[name] ?? fallback;
    if (s === undefined) throw inputError({ field: name }, 'environment variable missing (set by the launcher beside RANK)');
    const v = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(v) || v < min) throw inputError({ field: name }, `expected an integer >= ${min}, got '${s}'`);
    return v;
  };
  const rank = int('RANK', 0);
  const worldSize = int('WORLD_SIZE', 1);
  if (rank >= worldSize) throw inputError({ field: 'RANK' }, `rank ${rank} is outside WORLD_SIZE ${worldSize}`);
  return {
    rank,
    worldSize,
    localRank: int('LOCAL_RANK', 0, String(rank)),
    masterAddr: env['MASTER_ADDR'] ?? '127.0.0.1',
    masterPort: int('MASTER_PORT', 1),
  };
}

/**
 * The contiguous part [start, end) of `count` items that `rank` takes: near-equal parts in rank order
 * (the first count % worldSize ranks take one more), so the concatenation in rank order is the whole.
 * `weight` = this part's share of the items × worldSize: 1 for equal parts; the mean over ranks of
 * weight × (the part's mean) is the mean over all items.
 */
export function shardRange(count: number, rank: number, worldSize: number): { start: number; end: number; weight: number } {
  if (!Number.isInteger(count) || count < 1) throw new Error(`shardRange: count must be an integer >= 1, got ${count}`);
  if (!Number.isInteger(worldSize) || worldSize < 1 || !Number.isInteger(rank) || rank < 0 || rank >= worldSize)
    throw new Error(`shardRange: bad rank ${rank} of world size ${worldSize}`);
  const base = Math.floor(count / worldSize);
  const extra = count % worldSize;
  const start = rank * base + Math.min(rank, extra);
  const size = base + (rank < extra ? 1 : 0);
  return { start, end: start + size, weight: extra === 0 ? 1 : (size * worldSize) / count };
}
