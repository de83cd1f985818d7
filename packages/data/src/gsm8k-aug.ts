// GSM8k-Aug-style equation-only CoT derived from GSM8K's `<<expr=result>>` calculator annotations.
// The real GSM8k-Aug training set (~385k rows, mostly GPT-4-generated problems) is a Git LFS object we
// do not have (data/MANIFEST.md §2); the 7,473 original GSM8K train problems with derived CoTs are the
// stand-in. On the original problems the derivation reproduces the official CoTs exactly: all 500
// valid.txt rows (questions from GSM8K train) and all 1319 test.txt rows (see gsm8k-aug.test.ts).
import { defaultDataDir } from './data-dir.js';
import { loadDataset, type Problem } from './datasets.js';

const ANNOTATION = /<<.*?>>/g;

/**
 * The equation CoT of a GSM8K answer text: its `<<…>>` annotations in order, joined by one space,
 * e.g. "<<16-3-4=9>> <<9*2=18>>". An answer without annotations gives ''.
 */
export function equationCot(answerText: string): string {
  return (answerText.match(ANNOTATION) ?? []).join(' ');
}

/** The questions of GSM8k-Aug valid.txt, so the stand-in can keep them held out. */
function augValidQuestions(dataDir: string): Set<string> {
  return new Set(loadDataset('gsm8k-aug-valid', { dataDir }).problems.map((p) => p.problem));
}

export interface AugFromTrainOptions {
  /**
   * Leave out the 500 GSM8K train problems that GSM8k-Aug uses as its validation set, so that
   * 'gsm8k-aug-valid' stays a held-out set when training on the stand-in (default true).
   */
  excludeAugValid?: boolean;
}

/**
 * The GSM8k-Aug stand-in: GSM8K train problems (dataset 'gsm8k-train', same ids, indices, answers and
 * solutions) with `cot` replaced by the equation CoT. 95 of the 7,473 rows have no annotation and so
 * an empty CoT (GSM8k-Aug test has 18 such rows). With excludeAugValid (default) 6,973 rows remain.
 */
export function gsm8kAugFromTrain(dataDir: string = defaultDataDir(), opts: AugFromTrainOptions = {}): Problem[] {
  const train = loadDataset('gsm8k-train', { dataDir }).problems;
  const held = opts.excludeAugValid === false ? new Set<string>() : augValidQuestions(dataDir);
  return train.filter((p) => !held.has(p.problem)).map((p) => ({ ...p, cot: equationCot(p.solution ?? '') }));
}
