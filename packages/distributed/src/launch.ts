// The launcher (torchrun's job): starts this node's ranks as child processes of the same command,
// each with its RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT in the environment, waits
// for them, and stops the others as soon as one fails. Rank 0's stdout is handed to `onStdout` in one
// piece when rank 0 ends (the app's one-line summary); the other ranks' stdout is dropped; every rank's stderr is inherited
// (rank 0 logs; the others print only a failure).
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { type Logger, UserError, silentLogger } from '@latent-sft/core';
import { rankEnv } from './group.js';

export interface LaunchOptions {
  /** The program and its arguments, run once per rank (the app re-running itself). */
  command: string;
  args: readonly string[];
  /** The environment the ranks start from (the rank variables are added). */
  env: Readonly<Record<string, string | undefined>>;
  /** Ranks on this node. */
  procsPerNode: number;
  nodes: number;
  /** This node's index: its ranks are nodeRank·procsPerNode + 0..procsPerNode-1. */
  nodeRank: number;
  masterAddr: string;
  /** Rank 0's port; 0 (one node only): a free port of masterAddr. */
  masterPort: number;
  /** Rank 0's whole stdout, once rank 0 has ended (not called when it wrote nothing). */
  onStdout?: (text: string) => void;
  logger?: Logger;
}

/** A port nobody listens on at `addr` now (asked from the OS). */
export async function freePort(addr: string): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new UserError(`distributed: cannot open a port on ${addr}: ${e.message}`)));
    server.listen(0, addr, () => resolve());
  });
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  if (address === null || typeof address === 'string') throw new Error(`distributed: no port from ${addr}`);
  return address.port;
}

/** Checks the launch geometry; returns the world size. */
export function checkLaunch(o: Pick<LaunchOptions, 'procsPerNode' | 'nodes' | 'nodeRank' | 'masterPort'>): number {
  const int = (v: number, min: number) => Number.isInteger(v) && v >= min;
  if (!int(o.procsPerNode, 1)) throw new UserError(`--gpus must be an integer >= 1, got ${o.procsPerNode}`);
  if (!int(o.nodes, 1)) throw new UserError(`--nodes must be an integer >= 1, got ${o.nodes}`);
  if (!int(o.nodeRank, 0) || o.nodeRank >= o.nodes) throw new UserError(`--node-rank must be in 0..${o.nodes - 1}, got ${o.nodeRank}`);
  if (!int(o.masterPort, 0) || o.masterPort > 65535) throw new UserError(`--master-port must be a port number, got ${o.masterPort}`);
  if (o.nodes > 1 && o.masterPort === 0) throw new UserError('--master-port is required with --nodes > 1 (every node must name the same port)');
  return o.procsPerNode * o.nodes;
}

/** Runs this node's ranks to the end; throws a one-line error naming the first rank that failed. */
export async function launch(o: LaunchOptions): Promise<void> {
  const worldSize = checkLaunch(o);
  const logger = o.logger ?? silentLogger;
  const masterPort = o.masterPort === 0 ? await freePort(o.masterAddr) : o.masterPort;
  const children: ChildProcess[] = [];
  let failure: UserError | null = null;
  const stopOthers = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
  };
  const exits: Promise<void>[] = [];
  logger.info({ worldSize, nodes: o.nodes, nodeRank: o.nodeRank, masterAddr: o.masterAddr, masterPort }, `launching ${o.procsPerNode} ranks`);
  for (let local = 0; local < o.procsPerNode; local++) {
    const rank = o.nodeRank * o.procsPerNode + local;
    const env = { ...o.env, ...rankEnv({ rank, worldSize, localRank: local, masterAddr: o.masterAddr, masterPort }) };
    const child = spawn(o.command, [...o.args], { env, stdio: ['ignore', rank === 0 ? 'pipe' : 'ignore', 'inherit'] });
    children.push(child);
    const out: Buffer[] = [];
    if (rank === 0) child.stdout?.on('data', (d: Buffer) => out.push(d));
    exits.push(
      new Promise<void>((resolve) => {
        child.once('error', (e) => {
          failure ??= new UserError(`rank ${rank} could not start: ${e.message}`);
          stopOthers();
          resolve();
        });
        child.once('close', (code, signal) => {
          if (out.length > 0) o.onStdout?.(Buffer.concat(out).toString('utf8'));
          if (code !== 0 && failure === null) {
            failure = new UserError(`rank ${rank} ${code !== null ? `exited with code ${code}` : `was stopped by ${signal}`} (its message is above)`);
            stopOthers();
          }
          resolve();
        });
      }),
    );
  }
  await Promise.all(exits);
  if (failure !== null) throw failure;
}
