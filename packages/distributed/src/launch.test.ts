// The launcher with plain node children: the rank variables each one gets, rank 0's stdout only, and
// a failing rank stopping the others with a one-line error.
import { describe, expect, it } from 'vitest';
import { checkLaunch, launch } from './launch.js';

const node = process.execPath;
const base = { command: node, env: { PATH: process.env['PATH'] }, nodes: 1, nodeRank: 0, masterAddr: '127.0.0.1' };

describe('launch', () => {
  it('starts one child per rank with the torchrun variables; only rank 0 reaches stdout', async () => {
    let out = '';
    const script = 'const e = process.env; console.log(JSON.stringify([e.RANK, e.WORLD_SIZE, e.LOCAL_RANK, e.MASTER_ADDR, e.MASTER_PORT]))';
    await launch({ ...base, args: ['-e', script], procsPerNode: 3, masterPort: 29999, onStdout: (t) => (out += t) });
    expect(out).toBe('["0","3","0","127.0.0.1","29999"]\n');
    // Node rank 1 of 2 with 2 ranks per node: global ranks 2 and 3, none of them rank 0.
    out = '';
    await launch({ ...base, args: ['-e', script], procsPerNode: 2, nodes: 2, nodeRank: 1, masterPort: 29999, onStdout: (t) => (out += t) });
    expect(out).toBe('');
  });

  it('a failing rank stops the others and is named in one line', async () => {
    const script = "if (process.env.RANK === '1') process.exit(3); setTimeout(() => {}, 600000)";
    const t0 = Date.now();
    await expect(launch({ ...base, args: ['-e', script], procsPerNode: 2, masterPort: 0 })).rejects.toThrow('rank 1 exited with code 3 (its message is above)');
    expect(Date.now() - t0).toBeLessThan(300_000); // rank 0 was stopped, not waited for
  });

  it('checks the geometry', () => {
    expect(checkLaunch({ procsPerNode: 4, nodes: 2, nodeRank: 1, masterPort: 29500 })).toBe(8);
    expect(() => checkLaunch({ procsPerNode: 0, nodes: 1, nodeRank: 0, masterPort: 0 })).toThrow('--gpus must be an integer >= 1, got 0');
    expect(() => checkLaunch({ procsPerNode: 2, nodes: 2, nodeRank: 2, masterPort: 1 })).toThrow('--node-rank must be in 0..1, got 2');
    expect(() => checkLaunch({ procsPerNode: 2, nodes: 2, nodeRank: 0, masterPort: 0 })).toThrow('--master-port is required with --nodes > 1');
  });
});
