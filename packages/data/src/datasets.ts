// Dataset loaders: every file in data/ into one Problem record (see data/MANIFEST.md for the files and
// their gold-answer rules, parsers.ts for the per-file parsing). Bad rows throw a one-line inputError
// naming file:line and field, or, with skipBadRows, are recorded in `skipped` and left out. The
// procedurally generated 'multiplication' dataset has no file; see multiplication.ts.
import { join } from 'node:path';
import { inputError, isUserError } from '@latent-sft/core';
import { defaultDataDir } from './data-dir.js';
import {
  parseAime,
  parseGsm8k,
  parseGsm8kAugLine,
  parseGsmHard,
  parseJsonRecord,
  parseMath500,
  parseMultiArith,
  parseSvamp,
  type ParsedRow,
} from './parsers.js';
import { jsonArrayRecords, lineRecords, readTextFile, type RawRecord } from './records.js';

/** Every dataset a Problem can come from. */
export type DatasetName =
  | 'gsm8k-train'
  | 'gsm8k-test'
  | 'gsm8k-aug-test'
  | 'gsm8k-aug-valid'
  | 'svamp'
  | 'multiarith'
  | 'gsm-hard'
  | 'math500'
  | 'aime24'
  | 'multiplication';

/** The datasets stored as files in data/ (all but the generated 'multiplication'). */
export type FileDatasetName = Exclude<DatasetName, 'multiplication'>;

/** One problem, whatever the source file. */
export interface Problem {
  dataset: DatasetName;
  /** The dataset's own id where it has one (SVAMP `ID`, AIME `id`, MATH-500 `unique_id`), else String(index). */
  id: string;
  /** 0-based row order in the file (rows skipped as bad still count). */
  index: number;
  problem: string;
  /** Explicit reasoning: GSM8K answer text without its `####` line, GSM8k-Aug equations (may be ''); else null. */
  cot: string | null;
  /** Full worked solution: GSM8K answer text, GSM-Hard `code`, MATH/AIME `solution`; else null. */
  solution: string | null;
  /** Gold final answer string, per MANIFEST's "Gold answer" rule of the file. */
  answer: string;
}

/** A row left out under skipBadRows; `reason` is the one-line error message. */
export interface SkippedRow {
  file: string;
  line: number;
  reason: string;
}

export interface LoadOptions {
  /** Folder holding the data files (default: the repo's data/, see defaultDataDir). */
  dataDir?: string;
  /** Record bad rows in `skipped` and go on, instead of throwing on the first one. */
  skipBadRows?: boolean;
}

export interface LoadResult {
  problems: Problem[];
  skipped: SkippedRow[];
}

/** Where a dataset lives and how to read its `id` and answers. */
export interface DatasetInfo {
  /** Path relative to the data dir ('' for the generated 'multiplication'). */
  file: string;
  /** What `id` is, in words. */
  idField: string;
  /** True when the gold answer is a number (compare numerically); false for LaTeX answers (MATH-500). */
  numeric: boolean;
}

/** The file-backed datasets, in MANIFEST order. */
export const DATASET_NAMES: readonly FileDatasetName[] = [
  'gsm8k-train',
  'gsm8k-test',
  'gsm8k-aug-test',
  'gsm8k-aug-valid',
  'svamp',
  'multiarith',
  'gsm-hard',
  'math500',
  'aime24',
];

type Layout = 'jsonl' | 'json-array' | 'text-lines';
interface Spec extends DatasetInfo {
  layout: Layout;
  parse: (value: unknown, where: { file: string; line: number }) => ParsedRow;
}

const ROW_INDEX = 'String(index): 0-based row in the file';

const SPECS: { [K in FileDatasetName]: Spec } = {
  'gsm8k-train': { file: 'gsm8k/train.jsonl', idField: ROW_INDEX, numeric: true, layout: 'jsonl', parse: parseGsm8k },
  'gsm8k-test': { file: 'gsm8k/test.jsonl', idField: ROW_INDEX, numeric: true, layout: 'jsonl', parse: parseGsm8k },
  'gsm8k-aug-test': {
    file: 'gsm8k_aug/test.txt',
    idField: ROW_INDEX,
    numeric: true,
    layout: 'text-lines',
    parse: (v, w) => parseGsm8kAugLine(v as string, w),
  },
  'gsm8k-aug-valid': {
    file: 'gsm8k_aug/valid.txt',
    idField: ROW_INDEX,
    numeric: true,
    layout: 'text-lines',
    parse: (v, w) => parseGsm8kAugLine(v as string, w),
  },
  svamp: { file: 'svamp/SVAMP.json', idField: 'ID, e.g. "chal-1"', numeric: true, layout: 'json-array', parse: parseSvamp },
  multiarith: {
    file: 'multiarith/mawpsmultiarith.jsonl',
    idField: ROW_INDEX,
    numeric: true,
    layout: 'jsonl',
    parse: parseMultiArith,
  },
  'gsm-hard': { file: 'gsm_hard/gsmhardv2.jsonl', idField: ROW_INDEX, numeric: true, layout: 'jsonl', parse: parseGsmHard },
  math500: {
    file: 'math500/test.jsonl',
    idField: 'unique_id, e.g. "test/precalculus/807.json"',
    numeric: false,
    layout: 'jsonl',
    parse: parseMath500,
  },
  aime24: { file: 'aime24/test.jsonl', idField: 'id (integer 60-89) as a string, e.g. "60"', numeric: true, layout: 'jsonl', parse: parseAime },
};

const MULTIPLICATION_INFO: DatasetInfo = {
  file: '',
  idField: `${ROW_INDEX} of the generated list (see generateMultiplication)`,
  numeric: true,
};

/** Where a dataset lives, what its `id` is, and whether its answers are numeric. */
export function datasetInfo(name: DatasetName): DatasetInfo {
  if (name === 'multiplication') return { ...MULTIPLICATION_INFO };
  const spec = specOf(name);
  return { file: spec.file, idField: spec.idField, numeric: spec.numeric };
}

function specOf(name: string): Spec {
  if (name === 'multiplication') {
    throw inputError({ field: 'dataset' }, "'multiplication' is generated, not loaded: use generateMultiplication");
  }
  const spec = (SPECS as Record<string, Spec | undefined>)[name];
  if (!spec) throw inputError({ field: 'dataset' }, `unknown dataset '${name}'; expected one of ${DATASET_NAMES.join(', ')}`);
  return spec;
}

/** Loads a dataset from `<dataDir>/<datasetInfo(name).file>`. */
export function loadDataset(name: DatasetName, opts: LoadOptions = {}): LoadResult {
  const spec = specOf(name);
  return loadDatasetFile(name, join(opts.dataDir ?? defaultDataDir(), spec.file), opts);
}

/** Loads `path` with the layout and rules of dataset `name` (for other copies and for test fixtures). */
export function loadDatasetFile(name: DatasetName, path: string, opts: LoadOptions = {}): LoadResult {
  const spec = specOf(name);
  const text = readTextFile(path);
  const records: RawRecord[] = spec.layout === 'json-array' ? jsonArrayRecords(text, path) : lineRecords(text);
  const problems: Problem[] = [];
  const skipped: SkippedRow[] = [];
  const seenIds = new Map<string, number>();
  records.forEach((rec, index) => {
    const where = { file: path, line: rec.line };
    try {
      const value = spec.layout === 'text-lines' ? rec.text : parseJsonRecord(rec.text, where);
      const row = spec.parse(value, where);
      const id = row.id ?? String(index);
      const firstLine = seenIds.get(id);
      if (firstLine !== undefined) throw inputError({ ...where, field: 'id' }, `duplicate id '${id}' (first on line ${firstLine})`);
      seenIds.set(id, rec.line);
      problems.push({ dataset: name, id, index, problem: row.problem, cot: row.cot, solution: row.solution, answer: row.answer });
    } catch (e) {
      if (!opts.skipBadRows || !isUserError(e)) throw e;
      skipped.push({ file: path, line: rec.line, reason: e.message });
    }
  });
  return { problems, skipped };
}
