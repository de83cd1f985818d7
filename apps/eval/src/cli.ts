// The eval CLI: `run` (generate + score + report), `report` (HTML + Markdown over run folders and
// training metrics) and `score` (a predictions file against a dataset). Options come from one zod
// schema per command through @latent-sft/config (strict flags, --config file, --print-config); the
// commands themselves live in @latent-sft/pipeline (runEval, writeEvalReport) and @latent-sft/eval
// (scorePredictionsFile).
import { buildCli, defineCommand, defineConfig } from '@latent-sft/config';
import { type Logger, inputError } from '@latent-sft/core';
import { DATASET_NAMES, MULTIPLICATION_TEST_SEED, type DatasetName } from '@latent-sft/data';
import { EVAL_MODES, type EvalDatasetName, MULTIPLICATION_DATASET_SYNTAX, parseEvalDataset, scorePredictionsFile } from '@latent-sft/eval';
import { type EvalRunOptions, defaultMethodName, runEval, writeEvalReport } from '@latent-sft/pipeline';
import { z } from 'zod';

const EXTRACTION = z
  .enum(['official', 'lenient', 'reference'])
  .default('official')
  .describe(
    "answer rule of the reported numbers: official = Latent-SFT's parser + grader (text after the last boxed); lenient = boxed → #### → last number (always reported beside it); reference = boxed only (the seed code)",
  );

const runSchema = defineConfig(
  z.object({
    model: z.string().describe('HF checkpoint folder (config.json + model.safetensors; tokenizer files unless --tokenizer)'),
    tokenizer: z.string().optional().describe('folder with tokenizer.json + tokenizer_config.json (default: --model)'),
    datasets: z
      .string()
      .default('gsm8k-aug-test')
      .describe(
        `comma-separated datasets (${DATASET_NAMES.join(', ')}, ${MULTIPLICATION_DATASET_SYNTAX}: the held-out multiplication test set of A-digit × B-digit factors, first 1000 problems, seed ${MULTIPLICATION_TEST_SEED})`,
      ),
    mode: z
      .enum(EVAL_MODES as ['latent', 'explicit', 'no-cot'])
      .default('latent')
      .describe('latent reasoning, explicit CoT, or no CoT'),
    seeds: z.string().default('1,2,3').describe('comma-separated sampling seeds (one run per dataset and seed)'),
    limit: z.number().int().positive().optional().describe('evaluate only the first N problems of each dataset'),
    'max-latent': z.number().int().nonnegative().default(128).describe('latent steps cap (latent); explicit modes add it to the token budget'),
    'max-new-tokens': z.number().int().positive().default(128).describe('answer tokens cap'),
    'batch-size': z.number().int().positive().default(64).describe('sequences per batch'),
    device: z.enum(['cpu', 'cuda']).default('cpu').describe('ONNX Runtime device'),
    dtype: z.enum(['float32', 'float16', 'bfloat16']).default('float32').describe('compute dtype (bfloat16: CUDA only)'),
    'cuda-graph': z
      .boolean()
      .default(false)
      .describe('CUDA only: decode steps replay a CUDA graph per (batch, cache capacity) shape; finished rows stay in the batch'),
    temperature: z.number().positive().optional().describe('top-p sampling temperature (default 0.6)'),
    'top-p': z.number().positive().max(1).optional().describe('top-p nucleus mass (default 0.95)'),
    greedy: z.boolean().default(false).describe('argmax decoding instead of top-p sampling'),
    'latent-top-k': z
      .number()
      .int()
      .positive()
      .optional()
      .describe("width of the latent superposition (recorded per step); default and must match: topK of the model's latent.json (else 10)"),
    'ecr-k': z.string().default('1,5,10').describe('comma-separated K values of ECR@K (each <= --latent-top-k)'),
    extraction: EXTRACTION,
    'data-dir': z.string().optional().describe('folder holding the data files (default: the repo data/)'),
    out: z.string().describe('output folder (predictions/, summary.json, summary.md, report.html)'),
    'method-name': z.string().optional().describe('row label in Table 1 (default: mode and model folder name)'),
    force: z.boolean().default(false).describe('replace a different eval run already in --out'),
    examples: z.number().int().nonnegative().default(4).describe('problems drawn as latent superpositions in report.html'),
    allowConfigFields: z
      .string()
      .default('')
      .describe("comma list of the model's config.json fields to load although unknown or unsupported (you take responsibility for their effect)"),
  }),
);

const reportSchema = defineConfig(
  z.object({
    runs: z.string().describe('comma-separated eval run folders (each with summary.json)'),
    metrics: z.string().default('').describe('comma-separated training metrics JSONL files or pipeline run folders (loss curves of every phase)'),
    out: z.string().describe('HTML file to write; the Markdown goes beside it (.md)'),
    title: z.string().default('Latent-SFT evaluation').describe('report title'),
    examples: z.number().int().nonnegative().default(4).describe('latent superposition pictures per run'),
  }),
);

const scoreSchema = defineConfig(
  z.object({
    dataset: z.enum(DATASET_NAMES as unknown as [DatasetName, ...DatasetName[]]).describe('dataset the predictions answer'),
    predictions: z.string().describe('JSONL: {id | index, prediction, latents?} per line'),
    out: z.string().optional().describe('per-problem verdicts JSONL (default: <predictions>.verdicts.jsonl)'),
    extraction: EXTRACTION,
    'data-dir': z.string().optional().describe('folder holding the data files (default: the repo data/)'),
    force: z.boolean().default(false).describe('replace an existing verdicts file with different content'),
  }),
);

/** Parses a comma-separated list of integers (seeds, K values). */
export function parseIntList(text: string, field: string, min: number): number[] {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (parts.length === 0) throw inputError({ field }, 'expected a comma-separated list of integers, got nothing');
  const out = parts.map((p) => {
    if (!/^-?\d+$/.test(p) || !Number.isSafeInteger(Number(p)) || Number(p) < min) throw inputError({ field }, `'${p}' is not an integer >= ${min}`);
    return Number(p);
  });
  const dup = out.find((v, i) => out.indexOf(v) !== i);
  if (dup !== undefined) throw inputError({ field }, `${dup} is listed twice`);
  return out;
}

/** Parses --datasets: comma-separated names of file-backed datasets and `multiplication-<A>x<B>` test sets. */
export function parseDatasets(text: string): EvalDatasetName[] {
  const names = list(text);
  if (names.length === 0) throw inputError({ field: '--datasets' }, 'name at least one dataset');
  const parsed = names.map((n) => parseEvalDataset(n, '--datasets'));
  const dup = parsed.find((v, i) => parsed.indexOf(v) !== i);
  if (dup !== undefined) throw inputError({ field: '--datasets' }, `'${dup}' is listed twice`);
  return parsed;
}

function list(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Parses `argv` (without node and script) and runs the command; results go to `write` as one JSON line. */
export async function runCli(argv: readonly string[], write: (text: string) => void, logger: Logger): Promise<void> {
  await buildCli({
    name: 'eval',
    out: write,
    logger,
    commands: [
      defineCommand({
        command: 'run',
        describe: 'generate on datasets × seeds, score, and write rows, Table 1 and report.html',
        schema: runSchema,
        handler: async (c) => {
          if (c.greedy && (c.temperature !== undefined || c['top-p'] !== undefined)) {
            throw inputError({ field: '--greedy' }, 'give either --greedy or --temperature/--top-p, not both');
          }
          const opts: EvalRunOptions = {
            model: c.model,
            ...(c.tokenizer !== undefined ? { tokenizer: c.tokenizer } : {}),
            datasets: parseDatasets(c.datasets),
            mode: c.mode,
            seeds: parseIntList(c.seeds, '--seeds', 0),
            ...(c.limit !== undefined ? { limit: c.limit } : {}),
            maxLatent: c['max-latent'],
            maxNewTokens: c['max-new-tokens'],
            batchSize: c['batch-size'],
            device: c.device,
            dtype: c.dtype,
            cudaGraph: c['cuda-graph'],
            sampling: c.greedy ? { kind: 'greedy' } : { kind: 'top-p', temperature: c.temperature ?? 0.6, topP: c['top-p'] ?? 0.95 },
            ...(c['latent-top-k'] !== undefined ? { latentTopK: c['latent-top-k'] } : {}),
            ecrK: parseIntList(c['ecr-k'], '--ecr-k', 1),
            extraction: c.extraction,
            ...(c['data-dir'] !== undefined ? { dataDir: c['data-dir'] } : {}),
            out: c.out,
            methodName: c['method-name'] ?? defaultMethodName(c.mode, c.model),
            force: c.force,
            examples: c.examples,
            ...(c.allowConfigFields !== '' ? { allowConfigFields: c.allowConfigFields } : {}),
          };
          const s = await runEval(opts, logger);
          write(
            `${JSON.stringify({ out: opts.out, method: s.method, runs: s.runs.map((r) => ({ dataset: r.dataset, seed: r.seed, accuracy: r.accuracy, meanLatents: r.latents.mean })) })}\n`,
          );
        },
      }),
      defineCommand({
        command: 'report',
        describe: 'HTML + Markdown report over eval run folders and training metrics',
        schema: reportSchema,
        handler: (c) => {
          const r = writeEvalReport({ runs: list(c.runs), metrics: list(c.metrics), out: c.out, title: c.title, examples: c.examples });
          write(`${JSON.stringify(r)}\n`);
        },
      }),
      defineCommand({
        command: 'score',
        describe: 'score a predictions JSONL file against a dataset',
        schema: scoreSchema,
        handler: (c) => {
          const {
            result: r,
            out,
            line,
          } = scorePredictionsFile({
            dataset: c.dataset,
            predictions: c.predictions,
            ...(c.out !== undefined ? { out: c.out } : {}),
            ...(c['data-dir'] !== undefined ? { dataDir: c['data-dir'] } : {}),
            force: c.force,
            extraction: c.extraction,
          });
          logger.info({ out }, line);
          write(
            `${JSON.stringify({ dataset: r.dataset, correct: r.correct, scored: r.scored, problems: r.problems, accuracy: r.accuracy, meanLatents: r.meanLatents, verdicts: out })}\n`,
          );
        },
      }),
    ],
  }).parseAsync([...argv]);
}
