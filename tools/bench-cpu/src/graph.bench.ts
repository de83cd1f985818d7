// Building the tiny Llama-3 decoder graph with its CE loss and the reverse-mode gradient of every
// parameter, then serializing it to ONNX: the CPU work before every training session is created.
import { Graph, grad, serialize } from '@latent-sft/graph';
import { buildDecoder, causalLmLoss, tinyLlama } from '@latent-sft/models';
import { bench, describe } from 'vitest';
import { SHORT } from './options.js';

const config = tinyLlama({ vocabSize: 256 });

function decoderWithGrads(): Graph {
  const g = new Graph('train');
  const dec = buildDecoder(g, config, { input: 'ids', mask: 'padding', params: { kind: 'inputs' }, maxPositions: 64, markOutputs: false });
  const loss = causalLmLoss(g, dec.logits!, g.input('labels', 'int64', ['batch', 'seq']));
  const names = Object.keys(dec.params);
  const grads = grad(
    g,
    loss,
    names.map((n) => dec.params[n]!),
  );
  g.output(loss, 'loss');
  names.forEach((n, i) => g.output(grads[i]!, `grad.${n}`));
  g.prune();
  return g;
}

describe('graph', () => {
  bench(
    'tiny Llama decoder + CE + autodiff of every parameter',
    () => {
      decoderWithGrads();
    },
    SHORT,
  );
  bench(
    '… and serialize to ONNX bytes',
    () => {
      serialize(decoderWithGrads());
    },
    SHORT,
  );
});
