// The yargs layer every phase app shares: each command's flags come from its config schema (with
// --config, --print-config, --help); its handler logs the resolved config and writes the phase's
// summary as one JSON line. Apps only list their commands.
// Training commands also take the launcher's flags (--gpus/--procs, --nodes, --node-rank,
// --master-addr, --master-port; docs/distributed.md): with more than one rank in all and no RANK in
// the environment the process is the launcher, which starts this node's ranks as copies of the app
// (io.launch) and passes rank 0's summary line on; a process started with RANK (by our launcher or
// torchrun) joins the group and trains its shard, rank 0 alone logging and writing.
import { type CliSpec, type ConfigDef, type ConfigOf, buildCli, defineCommand } from '@latent-sft/config';
import { type Logger, UserError, silentLogger } from '@latent-sft/core';
import { type ProcessGroup, type RankInfo, checkLaunch, connectTcpGroup, launch, rankFromEnv } from '@latent-sft/distributed';
import type { z } from 'zod';
import type { RunContext } from './context.js';

/** Where a phase app logs and writes its one-line JSON summary. */
export interface PhaseCliIo {
  logger: Logger;
  write: (text: string) => void;
  /**
   * How to start this app again (one process per rank; the ranks get the same argv) and its
   * environment (RANK… when this process is a rank). The app's entry point passes its own
   * (process.execPath, execArgv + script, process.env); without it, --gpus > 1 is refused.
   */
  launch?: { command: string; args: readonly string[]; env: Readonly<Record<string, string | undefined>> };
}

/** One command of a phase app: `run` gets the resolved config and returns the summary. */
export interface PhaseCommand<S extends z.ZodObject = z.ZodObject> {
  command: string;
  describe: string;
  schema: ConfigDef<S>;
  run: (config: ConfigOf<S>, ctx: RunContext) => Promise<unknown>;
  /** A training command: takes the launcher flags and runs data parallel (its config has `device`). */
  trains?: boolean;
}

/** Keeps one command's schema and run function typed together (for the commands array). */
export function phaseCommand<S extends z.ZodObject>(cmd: PhaseCommand<S>): PhaseCommand {
  return cmd as unknown as PhaseCommand;
}

/** The launcher flags of the training commands. */
const LAUNCH_OPTIONS: NonNullable<CliSpec['options']> = {
  gpus: {
    type: 'number',
    alias: 'procs',
    requiresArg: true,
    defaultDescription: '1',
    describe:
      'data-parallel ranks on this node, one process each (torchrun --nproc-per-node). device cpu: that many CPU processes averaging gradients over TCP; ' +
      'device cuda: one per GPU, which needs the NCCL backend (not built yet: refused). train.batchSize is the global batch, split over all ranks',
  },
  nodes: { type: 'number', requiresArg: true, defaultDescription: '1', describe: 'machines taking part (each runs the same command with its --node-rank)' },
  'node-rank': { type: 'number', requiresArg: true, defaultDescription: '0', describe: "this machine's index among --nodes" },
  'master-addr': { type: 'string', requiresArg: true, defaultDescription: '127.0.0.1', describe: "rank 0's address (the machine of --node-rank 0)" },
  'master-port': { type: 'number', requiresArg: true, defaultDescription: '0', describe: "rank 0's TCP port (0: a free port, one node only)" },
};

/** Refuses data-parallel training on CUDA: the NCCL backend is not built yet. */
function checkDevice(config: unknown, worldSize: number): void {
  const device = (config as { device?: unknown }).device;
  if (worldSize > 1 && device !== 'cpu')
    throw new UserError(
      `data-parallel training over ${worldSize} ranks runs on device cpu only: the NCCL backend for device ${String(device)} is not built yet (docs/distributed.md)`,
    );
}

/** Parses `argv` (without node and script) and runs the chosen command. */
export async function runPhaseCli(name: string, commands: readonly PhaseCommand[], argv: readonly string[], io: PhaseCliIo): Promise<void> {
  const rank: RankInfo | null = io.launch === undefined ? null : rankFromEnv(io.launch.env);
  // The ranks other than 0 stay quiet (their failures still reach stderr as one line through runMain).
  const logger = rank !== null && rank.rank !== 0 ? silentLogger : io.logger;
  const trains = commands.some((c) => c.trains === true);
  await buildCli({
    name,
    out: io.write,
    logger,
    ...(trains ? { options: LAUNCH_OPTIONS } : {}),
    commands: commands.map((c) =>
      defineCommand({
        command: c.command,
        describe: c.describe,
        schema: c.schema,
        handler: async (config, cli) => {
          const o = cli.options;
          const geometry = {
            procsPerNode: (o['gpus'] as number | undefined) ?? 1,
            nodes: (o['nodes'] as number | undefined) ?? 1,
            nodeRank: (o['node-rank'] as number | undefined) ?? 0,
            masterPort: (o['master-port'] as number | undefined) ?? 0,
          };
          const worldSize = trains ? checkLaunch(geometry) : 1;
          if (c.trains !== true && worldSize > 1) throw new UserError(`${c.command}: not a training command; --gpus/--nodes do not apply`);
          if (rank === null && worldSize > 1) {
            checkDevice(config, worldSize);
            if (io.launch === undefined) throw new UserError('--gpus/--nodes need the app entry point (this caller cannot start the ranks)');
            const masterAddr = (o['master-addr'] as string | undefined) ?? '127.0.0.1';
            await launch({ ...io.launch, args: [...io.launch.args, ...argv], ...geometry, masterAddr, logger, onStdout: io.write });
            return;
          }
          let group: ProcessGroup | undefined;
          if (rank !== null && rank.worldSize > 1) {
            if (worldSize > 1 && worldSize !== rank.worldSize) throw new UserError(`--gpus × --nodes is ${worldSize} but WORLD_SIZE is ${rank.worldSize}`);
            checkDevice(config, rank.worldSize);
            group = await connectTcpGroup(rank);
          }
          try {
            logger.info({ config, ...(group ? { rank: group.rank, worldSize: group.worldSize } : {}) }, 'resolved config');
            const summary = await c.run(config, { logger, ...(group ? { group } : {}) });
            if (group === undefined || group.rank === 0) io.write(`${JSON.stringify(summary)}\n`);
          } finally {
            await group?.close();
          }
        },
      }),
    ),
  }).parseAsync([...argv]);
}
