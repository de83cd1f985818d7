// CoT chunking by compression rate r and the id-level sequences built from it (spec §2.5, §4.1), as
// pure functions over token-id arrays. Tokenisation, padding and masks live elsewhere (tokenizer,
// batching.ts, @latent-sft/masks). Legend: P = prompt prefix ids, n = CoT length, m = ceil(n / r)
// latent tokens, chunk S_i = CoT ids r*(i-1) .. r*i-1 (the last chunk may be shorter), Z = placeholder.
//   encoder   ids       = P <think> S_1 L S_2 L ... S_m L </think>             (L = compress id)
//   decoder   inputIds  = P <think> Z_1 S_2 Z_2 ... S_m Z_m </think> ANS        (S_1 never appears)
//             labels    = ign...ign  ign S_2 ign ... S_m ign </think> ANS        (ign = ignoreIndex)
//   phase 2   inputIds  = P <think> Z x m </think> ANS, labels ign on P, <think>, Z
// ANS holds the answer ids including EOS. Real ids must be non-negative integers; the placeholder
// and ignore index must be negative, so they can never be mistaken for a token.
import { inputError } from '@latent-sft/core';

function checkIds(ids: readonly number[], name: string, nonEmpty: boolean): void {
  if (!Array.isArray(ids)) throw inputError({ field: name }, 'expected an array of token ids');
  if (nonEmpty && ids.length === 0) throw inputError({ field: name }, 'must not be empty');
  for (let i = 0; i < ids.length; i++) {
    const v = ids[i];
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw inputError({ field: `${name}[${i}]` }, `token ids must be non-negative integers, got ${String(v)}`);
    }
  }
}

function checkRate(r: number): void {
  if (!Number.isSafeInteger(r) || r < 1) throw inputError({ field: 'r' }, `compression rate must be an integer >= 1, got ${r}`);
}

function checkNegative(v: number, name: string): void {
  if (!Number.isSafeInteger(v) || v >= 0) throw inputError({ field: name }, `must be a negative integer, got ${v}`);
}

/** Number of latent tokens for a CoT of n tokens at rate r: ceil(n / r). */
export function latentCount(n: number, r: number): number {
  checkRate(r);
  if (!Number.isSafeInteger(n) || n < 0) throw inputError({ field: 'n' }, `CoT length must be an integer >= 0, got ${n}`);
  return Math.ceil(n / r);
}

/** The CoT split into chunks of r ids (the last may be shorter); [] for an empty CoT. */
export function chunkCot(cotIds: readonly number[], r: number): number[][] {
  checkRate(r);
  checkIds(cotIds, 'cotIds', false);
  const chunks: number[][] = [];
  for (let i = 0; i < cotIds.length; i += r) chunks.push(cotIds.slice(i, i + r));
  return chunks;
}

/**
 * `insert_special_token_every_k`: one compress id after every r-th CoT id, and one more at the end
 * when n mod r != 0, so the output holds exactly ceil(n / r) compress ids.
 */
export function insertCompressTokens(cotIds: readonly number[], r: number, compressId: number): number[] {
  checkIds([compressId], 'compressId', true);
  return chunkCot(cotIds, r).flatMap((chunk) => [...chunk, compressId]);
}

export interface EncoderSequenceInput {
  prefixIds: readonly number[];
  thinkIds: readonly number[];
  cotIds: readonly number[];
  endThinkIds: readonly number[];
  r: number;
  /** Id of `<|compress_token|>`; it must not occur in any of the other id lists. */
  compressId: number;
}

export interface EncoderSequence {
  /** P <think> S_1 L ... S_m L </think>. */
  ids: number[];
  /** Index in `ids` of each compress token L_1..L_m, increasing. */
  compressPositions: number[];
  m: number;
}

/** The Stage-1 encoder sequence (spec §2.5). The CoT must be non-empty (m >= 1). */
export function buildEncoderSequence(input: EncoderSequenceInput): EncoderSequence {
  const { prefixIds, thinkIds, cotIds, endThinkIds, r, compressId } = input;
  checkIds(prefixIds, 'prefixIds', false);
  checkIds(thinkIds, 'thinkIds', true);
  checkIds(cotIds, 'cotIds', true);
  checkIds(endThinkIds, 'endThinkIds', true);
  checkIds([compressId], 'compressId', true);
  for (const [name, ids] of [
    ['prefixIds', prefixIds],
    ['thinkIds', thinkIds],
    ['cotIds', cotIds],
    ['endThinkIds', endThinkIds],
  ] as const) {
    const at = ids.indexOf(compressId);
    if (at !== -1) throw inputError({ field: `${name}[${at}]` }, `holds the compress id ${compressId}, which must only mark latent slots`);
  }
  const ids = [...prefixIds, ...thinkIds];
  const compressPositions: number[] = [];
  for (const chunk of chunkCot(cotIds, r)) {
    ids.push(...chunk);
    compressPositions.push(ids.length);
    ids.push(compressId);
  }
  ids.push(...endThinkIds);
  return { ids, compressPositions, m: compressPositions.length };
}

export interface DecoderSequenceInput {
  prefixIds: readonly number[];
  thinkIds: readonly number[];
  cotIds: readonly number[];
  endThinkIds: readonly number[];
  /** The answer ids (cot_answer + EOS). */
  answerIds: readonly number[];
  r: number;
  /** Value in inputIds at latent slots (default -100). */
  placeholder?: number;
  /** Label value that the loss ignores (default -100). */
  ignoreIndex?: number;
}

export interface DecoderSequence {
  inputIds: number[];
  labels: number[];
  /** Index of each latent slot Z_1..Z_m in inputIds, increasing. */
  latentPositions: number[];
  m: number;
}

/**
 * The Stage-1 decoder sequence (spec §2.5): the first chunk is removed, chunk S_{i+1} follows Z_i as
 * supervised spacer text, and Z_m is followed by `</think>`. Labels are ignoreIndex on the prefix,
 * `<think>` and placeholders, and the real ids on spacers, `</think>` and the answer.
 */
export function buildDecoderSequence(input: DecoderSequenceInput): DecoderSequence {
  const { prefixIds, thinkIds, cotIds, endThinkIds, answerIds, r } = input;
  const placeholder = input.placeholder ?? -100;
  const ignoreIndex = input.ignoreIndex ?? -100;
  checkIds(prefixIds, 'prefixIds', false);
  checkIds(thinkIds, 'thinkIds', true);
  checkIds(cotIds, 'cotIds', true);
  checkIds(endThinkIds, 'endThinkIds', true);
  checkIds(answerIds, 'answerIds', true);
  checkNegative(placeholder, 'placeholder');
  checkNegative(ignoreIndex, 'ignoreIndex');
  const chunks = chunkCot(cotIds, r);
  const inputIds = [...prefixIds, ...thinkIds];
  const labels: number[] = new Array<number>(inputIds.length).fill(ignoreIndex);
  const latentPositions: number[] = [];
  for (let i = 0; i < chunks.length; i++) {
    latentPositions.push(inputIds.length);
    inputIds.push(placeholder);
    labels.push(ignoreIndex);
    const spacer = chunks[i + 1];
    if (spacer) {
      inputIds.push(...spacer);
      labels.push(...spacer);
    }
  }
  inputIds.push(...endThinkIds, ...answerIds);
  labels.push(...endThinkIds, ...answerIds);
  return { inputIds, labels, latentPositions, m: chunks.length };
}

export interface LatentSequenceInput {
  prefixIds: readonly number[];
  thinkIds: readonly number[];
  /** The cached number of latent tokens (>= 1). */
  m: number;
  endThinkIds: readonly number[];
  answerIds: readonly number[];
  placeholder?: number;
  ignoreIndex?: number;
}

export interface LatentSequence {
  inputIds: number[];
  labels: number[];
  /** Latent slots are inputIds[latentStart .. latentEnd), latentEnd = latentStart + m. */
  latentStart: number;
  latentEnd: number;
}

/** The Phase-2 sequence (spec §4.1): P <think> Z x m </think> ANS, supervised on `</think>` and ANS only. */
export function buildLatentSequence(input: LatentSequenceInput): LatentSequence {
  const { prefixIds, thinkIds, m, endThinkIds, answerIds } = input;
  const placeholder = input.placeholder ?? -100;
  const ignoreIndex = input.ignoreIndex ?? -100;
  checkIds(prefixIds, 'prefixIds', false);
  checkIds(thinkIds, 'thinkIds', true);
  checkIds(endThinkIds, 'endThinkIds', true);
  checkIds(answerIds, 'answerIds', true);
  checkNegative(placeholder, 'placeholder');
  checkNegative(ignoreIndex, 'ignoreIndex');
  if (!Number.isSafeInteger(m) || m < 1) throw inputError({ field: 'm' }, `latent count must be an integer >= 1, got ${m}`);
  const latentStart = prefixIds.length + thinkIds.length;
  const inputIds = [...prefixIds, ...thinkIds, ...new Array<number>(m).fill(placeholder), ...endThinkIds, ...answerIds];
  const labels = [...new Array<number>(latentStart + m).fill(ignoreIndex), ...endThinkIds, ...answerIds];
  return { inputIds, labels, latentStart, latentEnd: latentStart + m };
}
