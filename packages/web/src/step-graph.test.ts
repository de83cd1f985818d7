// The web step graph: standard ONNX only (what onnxruntime-web runs), and its 16/8-bit weight
// variants against the float32 graph on ORT CPU (one prefill of the tiny Llama, graph optimisations
// off as the page loads them). The float32 graph's values against the Node engine are checked in
// chromium by tools/web-e2e.
import { serialize } from '@latent-sft/graph';
import { type NamedTensor, initParameters, tinyLlama } from '@latent-sft/models';
import { Session } from '@latent-sft/runtime';
import { fromBinary } from '@bufbuild/protobuf';
import { ModelProtoSchema } from 'onnx-buf';
import { describe, expect, it } from 'vitest';
import { WEB_STEP, type WebWeightDtype, buildWebStepGraph, quantizeRows } from './step-graph.js';

const config = tinyLlama({ vocabSize: 96 });
const tensors: NamedTensor[] = initParameters(config, { seed: 5 }).map((t) => ({ ...t, data: t.data.map((v) => v * 6) }));
const read = (name: string): Float32Array => (tensors.find((t) => t.name === name) as NamedTensor).data;
const K = 4;
const build = (weightDtype: WebWeightDtype) => buildWebStepGraph(config, read, { latentTopK: K, feed: 'soft', weightDtype, maxPositions: 64, headChunks: 3 });

/** Against float32 (measured here: float16 1.4e-4, int8 5.1e-3): weight rounding of 2^-11 (float16) and max|w|/254 (int8) through two layers. */
const NARROW = { float16: { atol: 2e-3, rtol: 0 }, int8: { atol: 3e-2, rtol: 0 } } as const;

describe('web step graph', () => {
  it.each(['float32', 'float16', 'int8'] as const)('%s: default-domain ONNX ops only, opset 18 only', (dtype) => {
    const proto = fromBinary(ModelProtoSchema, serialize(build(dtype)).model);
    expect(proto.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 18]]);
    const domains = new Set(proto.graph?.node.map((n) => n.domain));
    expect([...domains]).toEqual(['']);
    const inits = new Map(proto.graph?.initializer.map((t) => [t.name, t.dataType]));
    // ONNX TensorProto codes: 1 float, 10 float16, 3 int8.
    expect(inits.get('model.embed_tokens.weight')).toBe({ float32: 1, float16: 10, int8: 3 }[dtype]);
    expect(inits.get('model.norm.weight')).toBe(dtype === 'float16' ? 10 : 1);
  });

  it('quantizeRows: symmetric per row, every value within half a step', () => {
    const data = Float32Array.from([0.5, -1.27, 0.01, 0, 0, 0, 3, 2, -1]);
    const { q, scale } = quantizeRows(data, 3);
    expect(Array.from(scale)).toBeAllclose([1.27 / 127, 1, 3 / 127], { atol: 1e-9, rtol: 0 });
    expect(Array.from(q)).toEqual([50, -127, 1, 0, 0, 0, 127, 85, -42]);
    data.forEach((v, i) =>
      expect(Math.abs((q[i] as number) * (scale[Math.floor(i / 3)] as number) - v)).toBeLessThanOrEqual((scale[Math.floor(i / 3)] as number) / 2 + 1e-7),
    );
  });

  it('float16 and int8 weights give the float32 graph’s superposition and next embedding within their rounding', async () => {
    const T = 5;
    const L = config.numHiddenLayers;
    const feeds = {
      [WEB_STEP.ids]: { dtype: 'int64' as const, dims: [1, T], data: BigInt64Array.from([17n, 4n, 90n, 23n, 8n]) },
      [WEB_STEP.useSoft]: { dtype: 'bool' as const, dims: [1, T], data: new Uint8Array(T) },
      [WEB_STEP.soft]: { dtype: 'float32' as const, dims: [1, 1, config.hiddenSize], data: new Float32Array(config.hiddenSize) },
      [WEB_STEP.mask]: { dtype: 'int64' as const, dims: [1, T], data: new BigInt64Array(T).fill(1n) },
      [WEB_STEP.positions]: { dtype: 'int64' as const, dims: [1, T], data: BigInt64Array.from([0n, 1n, 2n, 3n, 4n]) },
      ...Object.fromEntries(
        Array.from({ length: L }, (_, i) => [WEB_STEP.pastKey(i), WEB_STEP.pastValue(i)])
          .flat()
          .map((n) => [n, { dtype: 'float32' as const, dims: [1, config.numKeyValueHeads, 0, config.headDim], data: new Float32Array(0) }]),
      ),
    };
    const run = async (dtype: WebWeightDtype) => {
      const s = await Session.create(serialize(build(dtype)).model, { graphOptimizationLevel: dtype === 'float32' ? 'all' : 'disabled' });
      try {
        return await s.run(feeds, [WEB_STEP.latentIds, WEB_STEP.softProbs, WEB_STEP.nextEmbed]);
      } finally {
        await s.release();
      }
    };
    const ref = await run('float32');
    for (const dtype of ['float16', 'int8'] as const) {
      const got = await run(dtype);
      // The same top-k set with the same argmax (lower ranks may swap where the float32 probabilities nearly tie).
      const ids = (o: typeof ref) => Array.from(o[WEB_STEP.latentIds]?.data as BigInt64Array, Number);
      expect(ids(got)[0], dtype).toBe(ids(ref)[0]);
      expect([...ids(got)].sort(), dtype).toEqual([...ids(ref)].sort());
      expect(Array.from(got[WEB_STEP.softProbs]?.data as Float32Array)).toBeAllclose(Array.from(ref[WEB_STEP.softProbs]?.data as Float32Array), NARROW[dtype]);
      expect(Array.from(got[WEB_STEP.nextEmbed]?.data as Float32Array)).toBeAllclose(Array.from(ref[WEB_STEP.nextEmbed]?.data as Float32Array), NARROW[dtype]);
    }
  });
});
