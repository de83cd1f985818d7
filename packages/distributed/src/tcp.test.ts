// The TCP backend with every rank in this process (N = 2 and 3 on loopback): allReduceMean against
// the float64 sum in rank order (exact bits, the same on every rank), broadcast from any root,
// barrier, and the one-line errors of a world-size mismatch, a rendezvous timeout, collectives out
// of step and a rank that disconnects.
import { Rng } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import type { ProcessGroup } from './group.js';
import { freePort } from './launch.js';
import { connectTcpGroup } from './tcp.js';

const addr = '127.0.0.1';

async function groups(n: number): Promise<ProcessGroup[]> {
  const port = await freePort(addr);
  return Promise.all(Array.from({ length: n }, (_, rank) => connectTcpGroup({ rank, worldSize: n, masterAddr: addr, masterPort: port })));
}

function randomF32(rng: Rng, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => rng.normal() * 10);
}

describe.each([2, 3])('TCP process group of %i ranks', (n) => {
  it('allReduceMean: the float64 sum in rank order / N, rounded to each array type, identical on every rank', async () => {
    const g = await groups(n);
    try {
      const rng = Rng.fromSeed(n);
      // 50k floats (200 kB): frames arrive in several socket chunks.
      const a = g.map(() => [randomF32(rng, 50_000), randomF32(rng, 3), Float64Array.from({ length: 5 }, () => rng.normal())]);
      const want = (a[0] as (Float32Array | Float64Array)[]).map((x, i) => {
        const out = x instanceof Float64Array ? new Float64Array(x.length) : new Float32Array(x.length);
        for (let j = 0; j < x.length; j++) {
          let s = 0;
          for (let r = 0; r < n; r++) s += a[r]![i]![j] as number;
          out[j] = s / n;
        }
        return out;
      });
      await Promise.all(g.map((p, r) => p.allReduceMean(a[r]!)));
      for (let r = 0; r < n; r++) for (let i = 0; i < want.length; i++) expect(a[r]![i]).toEqual(want[i]);
      // A second round on the results: already equal everywhere, so the mean is the value itself.
      await Promise.all(g.map((p, r) => p.allReduceMean(a[r]!)));
      for (let r = 0; r < n; r++) for (let i = 0; i < want.length; i++) expect(a[r]![i]).toEqual(want[i]);
    } finally {
      await Promise.all(g.map((p) => p.close()));
    }
  });

  it('broadcast from rank 0 and from the last rank, then barrier', async () => {
    const g = await groups(n);
    try {
      const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) % 251);
      const got0 = await Promise.all(g.map((p) => p.broadcast(p.rank === 0 ? bytes : null)));
      for (const b of got0) expect(b).toEqual(bytes);
      const last = n - 1;
      const small = Uint8Array.of(1, 2, 3);
      const gotLast = await Promise.all(g.map((p) => p.broadcast(p.rank === last ? small : null, last)));
      for (const b of gotLast) expect(b).toEqual(small);
      await Promise.all(g.map((p) => p.barrier()));
    } finally {
      await Promise.all(g.map((p) => p.close()));
    }
  });
});

describe('TCP process group errors', () => {
  it('a world-size mismatch fails both sides with one line', async () => {
    const port = await freePort(addr);
    const r = await Promise.allSettled([
      connectTcpGroup({ rank: 0, worldSize: 2, masterAddr: addr, masterPort: port }),
      connectTcpGroup({ rank: 1, worldSize: 3, masterAddr: addr, masterPort: port }),
    ]);
    expect(r.map((x) => (x.status === 'rejected' ? (x.reason as Error).message : 'ok'))).toEqual([
      `distributed: world size mismatch: rank 0 has 2, rank 1 has 3 (at ${addr}:${port})`,
      'distributed: world size mismatch: rank 0 has 2, rank 1 has 3',
    ]);
  });

  it('a rendezvous nobody joins times out with the missing ranks named', async () => {
    const port = await freePort(addr);
    await expect(connectTcpGroup({ rank: 0, worldSize: 3, masterAddr: addr, masterPort: port, timeoutMs: 500 })).rejects.toThrow(
      `distributed: rendezvous timed out after 0.5 s at ${addr}:${port}: 0 of 2 ranks joined rank 0 (missing: 1, 2)`,
    );
    await expect(connectTcpGroup({ rank: 1, worldSize: 2, masterAddr: addr, masterPort: port, timeoutMs: 500 })).rejects.toThrow(
      `distributed: rank 1 found no rendezvous at ${addr}:${port} within 0.5 s (is rank 0 running there?)`,
    );
  });

  it('collectives out of step, a size mismatch and a lost rank are errors on the ranks involved', async () => {
    let g = await groups(2);
    const r = await Promise.allSettled([g[0]!.allReduceMean([new Float32Array(2)]), g[1]!.barrier()]);
    expect(r.map((x) => (x.status === 'rejected' ? (x.reason as Error).message : 'ok'))).toEqual([
      'distributed: collectives out of step: rank 0 is in allReduceMean #1, rank 1 sent barrier #1',
      'distributed: collectives out of step: rank 0 is in allReduceMean #1, rank 1 sent barrier #1',
    ]);
    await Promise.all(g.map((p) => p.close()));
    g = await groups(2);
    const s = await Promise.allSettled([g[0]!.allReduceMean([new Float32Array(2)]), g[1]!.allReduceMean([new Float32Array(3)])]);
    const sizeError = 'distributed: allReduceMean #1: rank 1 sent 12 bytes, rank 0 has 8 (the ranks disagree on the tensors)';
    expect(s.map((x) => (x.status === 'rejected' ? (x.reason as Error).message : 'ok'))).toEqual([sizeError, sizeError]);
    await Promise.all(g.map((p) => p.close()));
    g = await groups(2);
    const c = await Promise.allSettled([g[0]!.allReduceMean([new Float32Array(2)]), g[1]!.allReduceMean([new Float32Array(2), new Float64Array(1)])]);
    const countError = 'distributed: allReduceMean #1: rank 1 passed 2 arrays, rank 0 has 1 (the ranks disagree on the tensors)';
    expect(c.map((x) => (x.status === 'rejected' ? (x.reason as Error).message : 'ok'))).toEqual([countError, countError]);
    await Promise.all(g.map((p) => p.close()));
    g = await groups(2);
    const pending = g[0]!.allReduceMean([new Float32Array(4)]);
    await g[1]!.close();
    await expect(pending).rejects.toThrow('rank 1 closed the connection');
    await g[0]!.close();
  });
});
