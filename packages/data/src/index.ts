// @latent-sft/data: dataset loaders into one Problem record, Latent-SFT seed row formats, GSM8k-Aug-style
// equation CoT, CoT chunking by rate r and the id sequences built from it, the multiplication
// generator, shuffling/padding/bucketing, and checksums of data/. No tokenizer, no masks.
export { DATASET_NAMES, loadDataset } from './datasets.js';
export type { DatasetName, FileDatasetName, LoadOptions, LoadResult, Problem, SkippedRow } from './datasets.js';
export { toTrainRow } from './seed-rows.js';
export type { TrainRow } from './seed-rows.js';
export { gsm8kAugFromTrain } from './gsm8k-aug.js';
export type { AugFromTrainOptions } from './gsm8k-aug.js';
export { buildDecoderSequence, buildEncoderSequence, buildLatentSequence } from './chunking.js';
export type {
  DecoderSequence,
  DecoderSequenceInput,
  EncoderSequence,
  EncoderSequenceInput,
  LatentSequence,
  LatentSequenceInput,
} from './chunking.js';
export {
  MULTIPLICATION_TEST_SEED,
  generateMultiplication,
  multiplicationCot,
  multiplicationSplit,
  multiplicationTestSet,
  parseMultiplicationDataset,
} from './multiplication.js';
export type {
  MultiplicationDatasetName,
  MultiplicationOptions,
  MultiplicationSplit,
  MultiplicationSplitOption,
  MultiplicationTestSetOptions,
} from './multiplication.js';
export { padBatch, shuffled } from './batching.js';
export type { PaddedBatch } from './batching.js';
