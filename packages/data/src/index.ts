// @latent-sft/data: dataset loaders into one Problem record, Latent-SFT seed row formats, GSM8k-Aug-style
// equation CoT, CoT chunking by rate r and the id sequences built from it, the multiplication
// generator, shuffling/padding/bucketing, and checksums of data/. No tokenizer, no masks.
export { defaultDataDir, parseChecksumList, sha256File, verifyChecksums } from './data-dir.js';
export type { ChecksumListing, ChecksumResult, ChecksumStatus } from './data-dir.js';
export { DATASET_NAMES, datasetInfo, loadDataset, loadDatasetFile } from './datasets.js';
export type {
  DatasetInfo,
  DatasetName,
  FileDatasetName,
  LoadOptions,
  LoadResult,
  Problem,
  SkippedRow,
} from './datasets.js';
export {
  cotAnswerText,
  fromTestRow,
  fromTrainRow,
  loadTrainRowsFile,
  stripThinkTags,
  toTestRow,
  toTrainRow,
} from './seed-rows.js';
export type { TestRow, TrainRow } from './seed-rows.js';
export { equationCot, gsm8kAugFromTrain } from './gsm8k-aug.js';
export type { AugFromTrainOptions } from './gsm8k-aug.js';
export {
  buildDecoderSequence,
  buildEncoderSequence,
  buildLatentSequence,
  chunkCot,
  insertCompressTokens,
  latentCount,
} from './chunking.js';
export type {
  DecoderSequence,
  DecoderSequenceInput,
  EncoderSequence,
  EncoderSequenceInput,
  LatentSequence,
  LatentSequenceInput,
} from './chunking.js';
export {
  MULTIPLICATION_TEST_COUNT,
  MULTIPLICATION_TEST_SEED,
  generateMultiplication,
  isMultiplicationDataset,
  multiplicationCot,
  multiplicationDatasetName,
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
export { bucketBatches, padBatch, shuffled } from './batching.js';
export type { BucketOptions, PaddedBatch } from './batching.js';
