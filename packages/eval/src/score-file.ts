// A predictions file scored (`eval score`): judge a predictions JSONL file against a dataset and write the per-problem verdicts
// atomically (default `<predictions>.verdicts.jsonl`). An existing verdicts file with different content
// is kept unless `force`; an identical one is left untouched.
import { existsSync, readFileSync } from 'node:fs';
import { inputError, writeFileAtomic } from '@latent-sft/core';
import { type DatasetName, loadDataset } from '@latent-sft/data';
import type { ExtractionMode } from './extract.js';
import { type ScoreResult, readPredictionsJsonl, scorePredictions, verdictsToJsonl } from './score.js';

export interface ScoreFileOptions {
  dataset: DatasetName;
  /** Predictions JSONL: `{id | index, prediction, latents?}` per line. */
  predictions: string;
  /** Verdicts JSONL to write (default `<predictions>.verdicts.jsonl`). */
  out?: string;
  /** Folder holding the data files (default: the repo's data/). */
  dataDir?: string;
  /** Replace an existing verdicts file whose content differs. */
  force?: boolean;
  /** Answer extraction chain (default lenient: boxed → #### → last number). */
  extraction?: ExtractionMode;
}

export interface ScoreFileResult {
  result: ScoreResult;
  /** Where the verdicts are. */
  out: string;
  /** False when an identical verdicts file was already there. */
  written: boolean;
  /** The one-line report, e.g. `gsm8k-test: accuracy 66.67% (20/30 correct; 30 of 1319 problems scored)`. */
  line: string;
}

/** The default verdicts path of a predictions file. */
export function defaultVerdictsPath(predictions: string): string {
  return `${predictions}.verdicts.jsonl`;
}

/** Scores the predictions file and writes the verdicts; throws a one-line UserError on bad input. */
export function scorePredictionsFile(opts: ScoreFileOptions): ScoreFileResult {
  const { problems } = loadDataset(opts.dataset, opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {});
  const result = scorePredictions({
    dataset: opts.dataset,
    problems,
    predictions: readPredictionsJsonl(opts.predictions),
    file: opts.predictions,
    extraction: { mode: opts.extraction ?? 'lenient' },
  });
  const out = opts.out ?? defaultVerdictsPath(opts.predictions);
  if (out === opts.predictions) throw inputError({ field: '--out' }, `would overwrite the predictions file ${out}`);
  const text = verdictsToJsonl(result.verdicts);
  let written = true;
  if (existsSync(out)) {
    const old = readFileSync(out, 'utf8');
    if (old === text) written = false;
    else if (!opts.force) {
      throw inputError({ file: out, field: '--out' }, 'exists with different verdicts; pass --force to replace it');
    }
  }
  if (written) writeFileAtomic(out, text);
  const line =
    `${result.dataset}: accuracy ${(result.accuracy * 100).toFixed(2)}% ` +
    `(${result.correct}/${result.scored} correct; ${result.scored} of ${result.problems} problems scored)`;
  return { result, out, written, line };
}
