// @latent-sft/distributed: process groups and collectives for data-parallel training. The
// ProcessGroup interface (allReduceMean, broadcast, barrier), its CPU backend over TCP with the
// rendezvous at rank 0, the rank variables a launcher passes (torchrun's), the split of a global
// batch into rank shards, and the per-node launcher.
export { rankFromEnv, shardRange } from './group.js';
export type { ProcessGroup, RankInfo } from './group.js';
export { connectTcpGroup } from './tcp.js';
export type { TcpGroupOptions } from './tcp.js';
export { checkLaunch, freePort, launch } from './launch.js';
export type { LaunchOptions } from './launch.js';
