// The datasets `eval run` accepts: the file-backed ones of @latent-sft/data (DATASET_NAMES) and the
// generated held-out multiplication test sets `multiplication-<A>x<B>` (the first 1000 test-split
// problems of A-digit × B-digit factors under the fixed seed 20261126, or all of them where fewer exist;
// see multiplicationTestSet). Their problems carry dataset 'multiplication', so answers are judged as
// integers (datasetAnswerKind('multiplication')), and their partial-product CoT is the ECR reference.
import { inputError } from '@latent-sft/core';
import {
  DATASET_NAMES,
  type FileDatasetName,
  type MultiplicationDatasetName,
  type Problem,
  loadDataset,
  multiplicationTestSet,
  parseMultiplicationDataset,
} from '@latent-sft/data';

/** A dataset name `eval run --datasets` accepts. */
export type EvalDatasetName = FileDatasetName | MultiplicationDatasetName;

/** The syntax of the generated datasets, as shown in help and errors. */
export const MULTIPLICATION_DATASET_SYNTAX = 'multiplication-<A>x<B>';

function isFileDataset(name: string): name is FileDatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}

/** Checks one --datasets entry; throws a one-line error naming `field` for anything else. */
export function parseEvalDataset(name: string, field = '--datasets'): EvalDatasetName {
  if (isFileDataset(name)) return name;
  const m = parseMultiplicationDataset(name);
  if (m !== null) return `multiplication-${m.digitsA}x${m.digitsB}`;
  if (name.startsWith('multiplication')) {
    throw inputError(
      { field },
      `bad dataset '${name}'; expected ${MULTIPLICATION_DATASET_SYNTAX} with digit counts A, B in [1, 1000] (e.g. multiplication-3x3)`,
    );
  }
  throw inputError({ field }, `unknown dataset '${name}'; expected one of ${DATASET_NAMES.join(', ')}, ${MULTIPLICATION_DATASET_SYNTAX}`);
}

/**
 * The problems of an eval dataset: a file-backed one from the data folder, or the multiplication test
 * set (generated whole, at most 1000 problems, then cut to `limit`: a prefix of the full set).
 */
export function loadEvalDataset(name: EvalDatasetName, opts: { dataDir?: string; limit?: number } = {}): Problem[] {
  let all: Problem[];
  if (isFileDataset(name)) all = loadDataset(name, opts.dataDir !== undefined ? { dataDir: opts.dataDir } : {}).problems;
  else {
    const m = parseMultiplicationDataset(name);
    if (m === null) throw inputError({ field: '--datasets' }, `unknown dataset '${name}'`); // not an EvalDatasetName
    all = multiplicationTestSet(m.digitsA, m.digitsB);
  }
  return opts.limit !== undefined ? all.slice(0, opts.limit) : all;
}
