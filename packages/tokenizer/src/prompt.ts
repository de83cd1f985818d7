// The Latent-SFT prompt format (spec §2.2–§2.4) as pure functions over a Tokenizer. Every part is
// tokenised on its own with add_special_tokens=false (no BOS for Llama) and the ids are concatenated,
// as `pretrain_tokenize_function` does. `</think>` is refused inside the problem, the CoT and the
// answer for every family (the seed checks this for DeepSeek only): its first id is the latent-end
// signal, and for Llama its pieces `</` `think` `>` would be mis-detected by the supervision mask.
import { inputError, type InputLocation } from '@latent-sft/core';
import type { Tokenizer } from './tokenizer.js';

/** The latent start marker (a literal string; a single token only in Qwen/DeepSeek vocabularies). */
export const THINK = '<think>';
/** The latent end marker. */
export const END_THINK = '</think>';
/** The instruction used by every family. */
export const INSTRUCTION = 'Please reason step by step, and put your final answer within \\boxed{}.';
/** Llama-3's `<|end_of_text|>`, Latent-SFT's Llama pad (`<|eot_id|>` occurs inside the template). */
export const LLAMA_PAD_ID = 128001;

/** A rendered prompt: `prefix` precedes `<think>`; `end` is appended to the answer. */
export interface PromptStrings {
  prefix: string;
  end: string;
}

/** Throws a one-line error when `text` contains `</think>`. */
export function assertNoEndThink(text: string, field: string, where: InputLocation = {}): void {
  const at = text.indexOf(END_THINK);
  if (at >= 0) {
    throw inputError({ ...where, field }, `contains '${END_THINK}' at offset ${at}; it is the latent end marker and may not appear in the text`);
  }
}

/** Llama-3.2 strings (spec §2.2): fixed header tokens, no BOS, answer closed by `<|eot_id|>`. */
export function llamaPrompt(problem: string, where: InputLocation = {}): PromptStrings {
  assertNoEndThink(problem, 'problem', where);
  return {
    prefix: `<|start_header_id|>user<|end_header_id|>\n\n${INSTRUCTION}\n${problem}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n`,
    end: '<|eot_id|>',
  };
}

/**
 * Qwen strings (spec §2.2, HEAD): the tokenizer's chat template over a system message with the
 * instruction and a user message with the problem, with the generation prompt; the answer ends with EOS.
 */
export function qwenPrompt(tok: Tokenizer, problem: string, where: InputLocation = {}): PromptStrings {
  assertNoEndThink(problem, 'problem', where);
  const prefix = tok.applyChatTemplate(
    [
      { role: 'system', content: INSTRUCTION },
      { role: 'user', content: problem },
    ],
    { addGenerationPrompt: true },
  );
  return { prefix, end: tok.eosToken };
}

/** The prompt of the tokenizer's family. */
export function promptFor(tok: Tokenizer, problem: string, where: InputLocation = {}): PromptStrings {
  return tok.family === 'llama' ? llamaPrompt(problem, where) : qwenPrompt(tok, problem, where);
}

/** The parts of one training sequence, in order. */
export interface PromptParts {
  prefix: string;
  think: string;
  cot: string;
  endThink: string;
  answer: string;
}

const PART_ORDER = ['prefix', 'think', 'cot', 'endThink', 'answer'] as const;

/** Ids of a sequence and the [start, end) id range of each part. */
export interface EncodedParts {
  ids: number[];
  spans: Record<keyof PromptParts, [number, number]>;
}

/** Tokenises each part separately (no special tokens added) and concatenates the ids. */
export function encodeParts(tok: Tokenizer, parts: PromptParts): EncodedParts {
  const ids: number[] = [];
  const spans = {} as Record<keyof PromptParts, [number, number]>;
  for (const key of PART_ORDER) {
    const start = ids.length;
    for (const id of tok.encode(parts[key], { addSpecialTokens: false })) ids.push(id);
    spans[key] = [start, ids.length];
  }
  return { ids, spans };
}

/** One example: problem, chain of thought and final answer text (`cot_answer` = cot + answer). */
export interface ExampleText {
  problem: string;
  cot: string;
  answer: string;
}

/** Encodes prefix, `<think>`, CoT, `</think>`, answer + end after checking for stray `</think>`. */
export function encodeExample(tok: Tokenizer, ex: ExampleText, where: InputLocation = {}): EncodedParts {
  assertNoEndThink(ex.cot, 'cot', where);
  assertNoEndThink(ex.answer, 'answer', where);
  const p = promptFor(tok, ex.problem, where);
  return encodeParts(tok, { prefix: p.prefix, think: THINK, cot: ex.cot, endThink: END_THINK, answer: ex.answer + p.end });
}

/** Ids of the two latent markers (each a list: several BPE pieces on Llama, one id on Qwen). */
export function latentMarkerIds(tok: Tokenizer): { think: number[]; endThink: number[] } {
  return { think: tok.encode(THINK), endThink: tok.encode(END_THINK) };
}

/** The latent-end id: the first id of the `</think>` tokenisation (524 `</` on Llama-3). */
export function latentEndId(tok: Tokenizer): number {
  const first = tok.encode(END_THINK)[0];
  if (first === undefined) throw new Error(`'${END_THINK}' encodes to no ids`);
  return first;
}

/**
 * Latent-SFT's pad id (spec §2.4): Llama 128001 (`<|end_of_text|>`); Qwen: the tokenizer's pad token,
 * or EOS when it has none (Qwen3 and Qwen2.5 define `<|endoftext|>` 151643).
 */
export function padId(tok: Tokenizer): number {
  if (tok.family === 'llama') {
    const id = tok.tokenToId('<|end_of_text|>');
    if (id === undefined || tok.baseId(id) !== LLAMA_PAD_ID)
      throw new Error(`'<|end_of_text|>' has base id ${id === undefined ? 'none' : tok.baseId(id)}, expected ${LLAMA_PAD_ID}`);
    return id;
  }
  return tok.configPadId;
}
