import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { materializeTokenizer } from './materialize.js';
import { END_THINK, INSTRUCTION, THINK, encodeExample, encodeParts, latentEndId, latentMarkerIds, llamaPrompt, padId, qwenPrompt } from './prompt.js';
import { loadTokenizer, type Tokenizer } from './tokenizer.js';

let llama: Tokenizer;
let qwen: Tokenizer;
beforeAll(async () => {
  llama = await loadTokenizer(materializeTokenizer('llama-3.2', mkdtempSync(join(tmpdir(), 'tok-l32-'))).dir);
  qwen = await loadTokenizer(materializeTokenizer('qwen3', mkdtempSync(join(tmpdir(), 'tok-q3-'))).dir);
});

describe('Llama prompt', () => {
  it('renders the spec §2.2 strings', () => {
    expect(llamaPrompt('What is 2+3?')).toEqual({
      prefix:
        '<|start_header_id|>user<|end_header_id|>\n\nPlease reason step by step, and put your final answer ' +
        'within \\boxed{}.\nWhat is 2+3?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
      end: '<|eot_id|>',
    });
  });

  it('encodes the parts separately, without BOS', () => {
    const e = encodeExample(llama, { problem: 'What is 2+3?', cot: '2+3=5', answer: 'The answer is \\boxed{5}' });
    expect(e.ids[0]).toBe(128006); // <|start_header_id|>, no <|begin_of_text|>
    expect(e.ids).not.toContain(128000);
    expect(e.ids.slice(...e.spans.think)).toEqual([14023, 771, 29]);
    expect(e.ids.slice(...e.spans.endThink)).toEqual([524, 27963, 29]);
    expect(e.ids.slice(...e.spans.cot)).toEqual(llama.encode('2+3=5'));
    expect(e.ids.at(-1)).toBe(128009);
    expect(e.spans.answer[1]).toBe(e.ids.length);
    // Separate tokenisation matters: in one string '5.' + '</think>' merges into '.</' (4005) and
    // the marker loses its first id 524.
    expect(llama.encode(`5.${END_THINK}`)).toEqual([20, 4005, 27963, 29]);
    const parts = encodeParts(llama, { prefix: '', think: THINK, cot: '5.', endThink: END_THINK, answer: '' });
    expect(parts.ids).toEqual([14023, 771, 29, 20, 13, 524, 27963, 29]);
    expect(parts.spans).toEqual({ prefix: [0, 0], think: [0, 3], cot: [3, 5], endThink: [5, 8], answer: [8, 8] });
  });

  it('uses 524 (the piece "</") as the latent-end id and pads with 128001', () => {
    expect(latentMarkerIds(llama)).toEqual({ think: [14023, 771, 29], endThink: [524, 27963, 29] });
    expect(latentEndId(llama)).toBe(524);
    expect(llama.decode([latentEndId(llama)])).toBe('</');
    expect(padId(llama)).toBe(128001);
    expect(llama.configPadId).toBe(128009); // HF's fallback (eos) is not Latent-SFT's pad
  });
});

describe('Qwen prompt', () => {
  it('renders the chat template with system instruction and generation prompt', () => {
    expect(qwenPrompt(qwen, 'What is 2+3?')).toEqual({
      prefix: `<|im_start|>system\n${INSTRUCTION}<|im_end|>\n<|im_start|>user\nWhat is 2+3?<|im_end|>\n<|im_start|>assistant\n`,
      end: '<|im_end|>',
    });
  });

  it('encodes single-id markers, ends with EOS and pads with <|endoftext|>', () => {
    const e = encodeExample(qwen, { problem: 'What is 2+3?', cot: '2+3=5', answer: '\\boxed{5}' });
    expect(e.ids.slice(...e.spans.think)).toEqual([151667]);
    expect(e.ids.slice(...e.spans.endThink)).toEqual([151668]);
    expect(e.ids.at(-1)).toBe(151645);
    expect(e.ids[0]).toBe(151644);
    expect(latentEndId(qwen)).toBe(151668);
    expect(padId(qwen)).toBe(151643);
  });
});

describe('</think> in the text', () => {
  const where = { file: 'data/train.jsonl', line: 7 };
  it('is refused in problem, cot and answer for every family', () => {
    expect(() => llamaPrompt('x </think> y', where)).toThrow(
      "data/train.jsonl:7: field 'problem': contains '</think>' at offset 2; it is the latent end marker and may not appear in the text",
    );
    expect(() => qwenPrompt(qwen, '</think>', where)).toThrow("field 'problem': contains '</think>' at offset 0");
    expect(() => encodeExample(llama, { problem: 'p', cot: 'a</think>', answer: 'b' }, where)).toThrow(
      "data/train.jsonl:7: field 'cot': contains '</think>' at offset 1",
    );
    expect(() => encodeExample(qwen, { problem: 'p', cot: 'a', answer: '</think>b' })).toThrow("field 'answer': contains '</think>' at offset 0");
    // '<think>' alone is allowed (only the end marker is a signal).
    expect(() => encodeExample(llama, { problem: '<think>', cot: 'a', answer: 'b' })).not.toThrow();
  });
});
