// `tsx tools/pipeline/src/experiment.ts run --plan <plan.json> --out <dir>`: one task of the Table-1
// reproduction (docs/results.md). The plan's stages (No-CoT, CoT-SFT, then per Latent-SFT row phase-1
// encoder → decoder → union → merge → cache → phase 2, then `eval run` for every row) run as separate
// processes of the phase apps' own CLIs, `--concurrency` at a time, each on the config file written to
// <dir>/configs/ (so every stage can be rerun by hand: `pnpm <app> --config <file>`); with --in-process,
// the same CLIs run inside the driver's process instead (no process start per stage). A finished stage
// (<out>/.stage-done with the same config hash) is skipped, so a rerun continues after a failure.
// At the end: <dir>/table.md (Table-1 layout over the eval runs + per-stage wall time and throughput)
// and <dir>/stages.json.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildCli, configHash, defineCommand, defineConfig } from '@latent-sft/config';
import { type Logger, UserError, createProgress, createRootLogger, errorText, inputError, runMain, writeFileAtomic, writeJsonAtomic } from '@latent-sft/core';
import { runCli as cacheLatentsCli } from '@latent-sft/cache-latents-app';
import { runCli as cotSftCli } from '@latent-sft/cot-sft-app';
import { runCli as evalCli } from '@latent-sft/eval-app';
import { type EvalSummary, parseSummary, renderSummariesMarkdown } from '@latent-sft/eval';
import { runCli as mergeLoraCli } from '@latent-sft/merge-lora-app';
import { runCli as phase1Cli } from '@latent-sft/phase1-app';
import { runCli as phase2Cli } from '@latent-sft/phase2-app';
import { type DataSpec, dataSchema, prepareData } from '@latent-sft/pipeline';
import { loadTokenizer } from '@latent-sft/tokenizer';
import { hideBin } from 'yargs/helpers';
import { z } from 'zod';
import { type Plan, type Stage, type StageApp, checkOrder, planSchema, seedPrefix, selectStages, stageGraph } from './experiment/plan.js';
import { type SeedRow, type SeedRun, renderTrainingSeedTable, trainingSeedTable } from './experiment/seeds.js';
import { type CollapseFlag, collapseFlags, flaggedLabel } from './experiment/collapse.js';
import { markdownCode, markdownText, shellCommand } from './experiment/text.js';

const SCRIPT = fileURLToPath(import.meta.url);
const DONE = '.stage-done';

/** The app CLI argv of a stage given its config file. */
function appArgv(app: StageApp, file: string): string[] {
  switch (app) {
    case 'phase1-encoder':
      return ['encoder', '--config', file];
    case 'phase1-decoder':
      return ['decoder', '--config', file];
    case 'phase1-union':
      return ['union', '--config', file];
    case 'eval':
      return ['run', '--config', file];
    default:
      return ['--config', file];
  }
}

/** The command a user types to rerun a stage by hand (shell-quoted: the folder names are the user's). */
function userCommand(app: StageApp, file: string): string {
  const bin = app.startsWith('phase1') ? 'phase1' : app;
  return shellCommand(['pnpm', bin, ...appArgv(app, file)]);
}

/** Where a stage's log records and command output go: stderr and stdout in its child process, its log file with --in-process. */
interface StageStreams {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** Runs one app CLI in this process (the child-process entry, and every stage with --in-process). */
async function runStage(app: StageApp, file: string, streams: StageStreams = { stdout: process.stdout, stderr: process.stderr }): Promise<void> {
  const logger = createRootLogger(app, { stream: streams.stderr });
  const io = { logger, write: (text: string) => void streams.stdout.write(text) };
  const argv = appArgv(app, file);
  switch (app) {
    case 'cot-sft':
      return cotSftCli(argv, io);
    case 'phase1-encoder':
    case 'phase1-decoder':
    case 'phase1-union':
      return phase1Cli(argv, io);
    case 'merge-lora':
      return mergeLoraCli(argv, io);
    case 'cache-latents':
      return cacheLatentsCli(argv, io);
    case 'phase2':
      return phase2Cli(argv, io);
    case 'eval':
      return evalCli(argv, io.write, logger);
  }
}

interface StageResult {
  id: string;
  app: StageApp;
  status: 'done' | 'skipped' | 'failed' | 'blocked';
  wallSeconds: number | null;
  examples?: number;
  command: string;
  log: string;
}

function loadPlan(file: string): Plan {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw inputError({ file }, `cannot read plan (${(e as Error).message})`);
  }
  const r = planSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0] as z.core.$ZodIssue;
    throw inputError({ file, field: issue.path.join('.') }, issue.message);
  }
  dataSchema.parse(r.data.data); // the data block is checked again by every app; fail here first
  return r.data;
}

/** How a stage runs: resolves with its exit code, its output in `log`. */
type StageLauncher = (stage: Stage, file: string, log: string) => Promise<number>;

/** Runs `stage` as a child process; resolves with its exit code. */
function spawnStage(stage: Stage, file: string, log: string): Promise<number> {
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, 'w');
  const child = spawn(process.execPath, [...process.execArgv, SCRIPT, 'stage', '--app', stage.app, '--file', file], {
    stdio: ['ignore', fd, fd],
    env: process.env,
  });
  return new Promise((res) => {
    child.on('exit', (code, signal) => {
      closeSync(fd);
      res(code ?? (signal !== null ? 128 : 1));
    });
    child.on('error', () => {
      closeSync(fd);
      res(1);
    });
  });
}

/**
 * --in-process: runs `stage` inside this process, as its child process would (the same app CLI on the
 * same config file, its records and output in `log`, an error printed as runMain prints it); resolves
 * with the exit code the child would have had. Stages still run `concurrency` at a time, interleaved on
 * this process' one event loop.
 */
async function runStageHere(stage: Stage, file: string, log: string): Promise<number> {
  mkdirSync(dirname(log), { recursive: true });
  const fd = openSync(log, 'w');
  const stream = { write: (text: string) => writeSync(fd, text) };
  try {
    await runStage(stage.app, file, { stdout: stream, stderr: stream });
    return 0;
  } catch (e) {
    stream.write(errorText(e));
    return 1;
  } finally {
    closeSync(fd);
  }
}

/** A stage id as one file name ('r4/phase2' → 'r4__phase2'). */
const flat = (id: string): string => id.replaceAll('/', '__');
/** Where a stage's app config is written (the file its child process and a user's rerun read). */
const configFile = (dir: string, id: string): string => join(dir, 'configs', `${flat(id)}.json`);

/** Runs every stage whose dependencies are done, `concurrency` at a time. */
async function runStages(stages: readonly Stage[], dir: string, concurrency: number, logger: Logger, launcher: StageLauncher): Promise<StageResult[]> {
  const results = new Map<string, StageResult>();
  const progress = createProgress({ total: stages.length, label: 'stages', logger });
  const pending = [...stages];
  const running = new Map<string, Promise<void>>();
  const launch = (st: Stage): void => {
    const file = configFile(dir, st.id);
    const log = join(dir, 'logs', `${flat(st.id)}.log`);
    const hash = configHash(st.config);
    const done = join(dir, st.out, DONE);
    const base: Omit<StageResult, 'status' | 'wallSeconds'> = {
      id: st.id,
      app: st.app,
      command: userCommand(st.app, file),
      log,
      ...(st.examples !== undefined ? { examples: st.examples } : {}),
    };
    const prev = existsSync(done) ? (JSON.parse(readFileSync(done, 'utf8')) as { hash: string; wallSeconds: number }) : null;
    if (prev !== null && prev.hash === hash) {
      results.set(st.id, { ...base, status: 'skipped', wallSeconds: prev.wallSeconds });
      progress.tick(1, { last: `${st.id} (done earlier)` });
      return;
    }
    rmSync(join(dir, st.out), { recursive: true, force: true }); // a stale or partial run of this stage
    const t0 = performance.now();
    logger.info({ stage: st.id, command: base.command }, 'stage started');
    running.set(
      st.id,
      launcher(st, file, log).then((code) => {
        const wallSeconds = (performance.now() - t0) / 1000;
        running.delete(st.id);
        if (code === 0) {
          writeJsonAtomic(done, { hash, wallSeconds });
          results.set(st.id, { ...base, status: 'done', wallSeconds });
          logger.info({ stage: st.id, wallSeconds: Number(wallSeconds.toFixed(1)) }, 'stage done');
        } else {
          results.set(st.id, { ...base, status: 'failed', wallSeconds });
          const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ') : '';
          logger.error({ stage: st.id, code, log, tail }, 'stage failed');
        }
        progress.tick(1, { last: st.id });
      }),
    );
  };
  for (const st of stages) writeJsonAtomic(configFile(dir, st.id), st.config);
  while (pending.length > 0 || running.size > 0) {
    for (let i = 0; i < pending.length && running.size < concurrency; ) {
      const st = pending[i] as Stage;
      const depStatus = st.deps.map((d) => results.get(d)?.status);
      if (depStatus.some((s) => s === 'failed' || s === 'blocked')) {
        results.set(st.id, { id: st.id, app: st.app, status: 'blocked', wallSeconds: null, command: '', log: '' });
        progress.tick(1, { last: `${st.id} (blocked)` });
        pending.splice(i, 1);
      } else if (depStatus.every((s) => s === 'done' || s === 'skipped')) {
        pending.splice(i, 1);
        launch(st);
      } else {
        i++;
      }
    }
    if (running.size > 0) await Promise.race(running.values());
    else if (pending.length > 0 && !pending.some((st) => st.deps.every((d) => results.has(d)))) break;
  }
  progress.done();
  return stages.map((st) => results.get(st.id) as StageResult);
}

/** Mean tokens of one full training example (prompt + <think> + CoT + </think> + answer). */
async function meanExampleTokens(plan: Plan, dir: string, dataDir: string | undefined): Promise<number | null> {
  const tokDir = join(dir, seedPrefix(plan, plan.trainingSeeds?.[0] ?? null), 'cot', 'hf');
  if (!existsSync(join(tokDir, 'tokenizer.json'))) return null;
  const tok = await loadTokenizer(tokDir);
  const data = prepareData(dataSchema.parse(dataDir !== undefined ? { ...plan.data, dataDir } : plan.data) as DataSpec, tok);
  const total = data.examples.reduce((s, e) => s + e.prefixIds.length + e.thinkIds.length + e.cotIds.length + e.endThinkIds.length + e.answerIds.length, 0);
  return total / data.examples.length;
}

/** The finished eval runs of a plan with trainingSeeds, as SeedRuns (labels without the seed suffix). */
function seedRuns(plan: Plan, dir: string, results: readonly StageResult[], flags: Map<string, CollapseFlag[]>): SeedRun[] {
  const status = new Map(results.map((r) => [r.id, r.status]));
  const methods: Array<[string, string]> = [['no-cot', 'No-CoT'], ['cot', 'CoT-SFT'], ...plan.rows.map((r): [string, string] => [r.id, r.label])];
  const out: SeedRun[] = [];
  for (const t of plan.trainingSeeds ?? []) {
    for (const [id, label] of methods) {
      const stage = `${seedPrefix(plan, t)}eval/${id}`;
      const f = join(dir, stage, 'summary.json');
      const st = status.get(stage);
      if ((st !== 'done' && st !== 'skipped') || !existsSync(f)) continue;
      out.push({
        method: label,
        trainingSeed: t,
        summary: parseSummary(JSON.parse(readFileSync(f, 'utf8')), f),
        collapsed: (flags.get(stage)?.length ?? 0) > 0,
      });
    }
  }
  return out;
}

/** table.md: the Table-1 layout over the eval runs, then wall time and throughput per stage. */
function renderReport(
  plan: Plan,
  dir: string,
  results: readonly StageResult[],
  meanTokens: number | null,
  flags: Map<string, CollapseFlag[]>,
  seedRows: readonly SeedRow[] | null,
): string {
  const summaries: EvalSummary[] = [];
  for (const r of results) {
    const f = join(dir, r.id, 'summary.json');
    if (r.app === 'eval' && (r.status === 'done' || r.status === 'skipped') && existsSync(f)) {
      const s = parseSummary(JSON.parse(readFileSync(f, 'utf8')), f);
      summaries.push({ ...s, method: markdownText(flaggedLabel(s.method, flags.get(r.id))) }); // plan labels are free text; a row built on a collapsed phase says so
    }
  }
  const lines: string[] = [];
  if (seedRows !== null) lines.push(`# ${plan.name}: Table 1 over training seeds`, '', renderTrainingSeedTable(seedRows), '');
  lines.push(summaries.length > 0 ? renderSummariesMarkdown(summaries, `${plan.name}: Table 1`) : `# ${plan.name}: Table 1\n\nno eval run finished`);
  lines.push(
    '',
    '## Stages',
    '',
    `device ${plan.device}, compute ${plan.compute}, concurrency ${plan.concurrency}; ` +
      `examples/s = steps × batch / wall time (process start to exit); tokens/s = examples/s × ${meanTokens === null ? '?' : meanTokens.toFixed(1)} ` +
      '(mean tokens of one full CoT training example)',
    '',
    '| stage | status | wall s | examples/s | tokens/s | command |',
    '|---|---|---|---|---|---|',
  );
  for (const r of results) {
    const finished = r.status === 'done' || r.status === 'skipped';
    const eps = finished && r.examples !== undefined && r.examples > 0 && r.wallSeconds !== null ? r.examples / r.wallSeconds : null;
    const tps = eps !== null && meanTokens !== null ? eps * meanTokens : null;
    const own = flags.get(r.id)?.find((f) => f.stage === r.id);
    lines.push(
      `| ${markdownText(r.id)} | ${r.status}${own ? ` ⚠ COLLAPSED: ${markdownText(own.message)}` : ''} | ${r.wallSeconds === null ? '–' : r.wallSeconds.toFixed(1)} | ${eps === null ? '–' : eps.toFixed(0)} | ` +
        `${tps === null ? '–' : tps.toFixed(0)} | ${r.command === '' ? '' : markdownCode(r.command)} |`,
    );
  }
  const total = results.reduce((s, r) => s + (r.wallSeconds ?? 0), 0);
  lines.push('', `sum of stage wall times: ${total.toFixed(1)} s`);
  return `${lines.join('\n')}\n`;
}

const runSchema = defineConfig(
  z.object({
    plan: z.string().describe('experiment plan JSON (tools/pipeline/configs/table1/*.json)'),
    out: z.string().describe('experiment folder (stages, configs/, logs/, table.md)'),
    device: z.enum(['cpu', 'cuda']).optional().describe("override the plan's device"),
    concurrency: z.number().int().positive().optional().describe("override the plan's concurrency"),
    'data-dir': z.string().optional().describe("data folder for every stage (default: the repo's data/)"),
    only: z
      .string()
      .optional()
      .describe('comma-separated stage ids: run only these and what they depend on (e.g. seed-1/eval/cot, the CoT-SFT gate of a plan)'),
    'in-process': z
      .boolean()
      .default(false)
      .describe('run every stage inside this process instead of a child process of its own (no process start per stage: toy plans on the CPU)'),
  }),
);

const stageSchema = defineConfig(
  z.object({
    app: z.enum(['cot-sft', 'phase1-encoder', 'phase1-decoder', 'phase1-union', 'merge-lora', 'cache-latents', 'phase2', 'eval']).describe('phase app'),
    file: z.string().describe('its config file'),
  }),
);

const experimentLogger = createRootLogger('experiment');
runMain(async () => {
  await buildCli({
    name: 'experiment',
    out: (text) => process.stdout.write(text),
    logger: experimentLogger,
    commands: [
      defineCommand({
        command: 'run',
        describe: 'run (or continue) every stage of a plan and write table.md',
        schema: runSchema,
        handler: async (c) => {
          const logger = experimentLogger;
          const loaded = loadPlan(c.plan);
          const plan: Plan = { ...loaded, device: c.device ?? loaded.device, concurrency: c.concurrency ?? loaded.concurrency };
          const dir = resolve(c.out);
          mkdirSync(dir, { recursive: true });
          writeJsonAtomic(join(dir, 'plan.json'), plan);
          const dataDir = c['data-dir'] !== undefined ? resolve(c['data-dir']) : undefined;
          const all = stageGraph(plan, dir, dataDir);
          checkOrder(all);
          const stages =
            c.only === undefined
              ? all
              : selectStages(
                  all,
                  c.only
                    .split(',')
                    .map((x) => x.trim())
                    .filter((x) => x !== ''),
                );
          const t0 = performance.now();
          const results = await runStages(stages, dir, plan.concurrency, logger, c['in-process'] ? runStageHere : spawnStage);
          const wall = (performance.now() - t0) / 1000;
          writeJsonAtomic(join(dir, 'stages.json'), { plan: plan.name, wallSeconds: wall, stages: results });
          const flags = collapseFlags(stages, dir);
          const seedRows = plan.trainingSeeds === undefined ? null : trainingSeedTable(seedRuns(plan, dir, results, flags));
          if (seedRows !== null) writeJsonAtomic(join(dir, 'training-seeds.json'), { plan: plan.name, trainingSeeds: plan.trainingSeeds, rows: seedRows });
          const report = renderReport(plan, dir, results, await meanExampleTokens(plan, dir, dataDir), flags, seedRows);
          writeFileAtomic(join(dir, 'table.md'), `${report}\nexperiment wall time: ${wall.toFixed(1)} s\n`);
          process.stdout.write(`${report}\nexperiment wall time: ${wall.toFixed(1)} s\n`);
          const bad = results.filter((r) => r.status === 'failed' || r.status === 'blocked');
          if (bad.length > 0)
            throw new UserError(`${bad.length} stage(s) failed or blocked: ${bad.map((r) => r.id).join(', ')} (logs in ${join(dir, 'logs')})`);
        },
      }),
      defineCommand({
        command: 'stage',
        describe: '(internal) run one stage in this process',
        schema: stageSchema,
        handler: (c) => runStage(c.app, c.file),
      }),
    ],
  }).parseAsync(hideBin(process.argv));
});
