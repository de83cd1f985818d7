// Generation throughput of the engine: random prompts, no stop ids (every row runs to the cap), one
// warm-up call, then the measured call. Prints load time, prefill/decode times and tokens/s.
// Usage (from packages/generate):
//   pnpm exec tsx --conditions=@latent-sft/source bench/generate-bench.ts \
//     --model llama-3.2-1b|tiny-llama|<checkpoint dir> --batch 64 --prompt-len 128 --new-tokens 256 \
//     --device cpu|cuda --dtype float32|float16|bfloat16 [--mode explicit|latent|explicit,latent] [--latent 128] \
//     [--latent-answer N]   (latent mode's answer tokens; default --new-tokens) \
//     [--sampling greedy|top-p] [--seed 0] [--threads N] [--engine compact|fixed|cuda-graph] [--bandwidth-gbs 4800]
//     [--dump FILE]   (prompts and greedy outputs of the first 8 rows, for tools/reference/gen_check.py)
//     [--decode-attention gqa|fused]   (fixed-shape decode steps: ORT's GroupQueryAttention or latent_sft.DecodeAttention)
//     [--topk fused|ops]   (the step's top-k and log-sum-exp: latent_sft.VocabTopK or ONNX TopK + standard ops)
//     [--feed soft|hidden]   (latent mode's next input: the top-k soft embedding, or the last hidden state)
// Presets are random-init (initParameters, seed --seed). The issue's setting: batch 64, 128-token
// prompts, 256 new tokens, on one GPU. In latent mode the end id is one the random model never
// argmaxes in practice, so each row feeds --latent soft embeddings, the `</think>` ids, then
// --new-tokens answer tokens. --engine: compact (finished rows dropped; default on the CPU), fixed
// (fixed-shape decode session), cuda-graph (fixed shapes replayed as CUDA graphs; default on CUDA).
// The record states the decode step's memory-bandwidth limit: batch / ((weights in the compute dtype +
// the KV cache at the mean length) / --bandwidth-gbs, default the H200's 4.8 TB/s spec).
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Rng } from '@latent-sft/core';
import { type ModelConfig, type NamedTensor, initParameters, llama32_1b, loadCheckpoint, parameterCount, tinyLlama } from '@latent-sft/models';
import { summarizeProfile } from '@latent-sft/runtime';
import { type GenerateDtype, type GenerateMode, Generator, type Sampling } from '../src/index.js';

const { values: a } = parseArgs({
  options: {
    model: { type: 'string', default: 'tiny-llama' },
    batch: { type: 'string', default: '64' },
    'prompt-len': { type: 'string', default: '128' },
    'new-tokens': { type: 'string', default: '256' },
    device: { type: 'string', default: 'cpu' },
    dtype: { type: 'string', default: 'float32' },
    mode: { type: 'string', default: 'explicit' },
    latent: { type: 'string', default: '128' },
    'latent-answer': { type: 'string' },
    sampling: { type: 'string', default: 'greedy' },
    seed: { type: 'string', default: '0' },
    threads: { type: 'string' },
    engine: { type: 'string' },
    'bandwidth-gbs': { type: 'string', default: '4800' },
    dump: { type: 'string' },
    candidates: { type: 'string', default: '64' },
    profile: { type: 'string' },
    'decode-attention': { type: 'string', default: 'gqa' },
    topk: { type: 'string', default: 'fused' },
    feed: { type: 'string', default: 'soft' },
  },
});

function int(name: string, v: string | undefined, min: number): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

const out = (s: string): boolean => process.stdout.write(`${s}\n`);
const batch = int('batch', a.batch, 1);
const promptLen = int('prompt-len', a['prompt-len'], 1);
const answerTokens = int('new-tokens', a['new-tokens'], 1);
const seed = int('seed', a.seed, 0);
const maxLatent = int('latent', a.latent, 0);
if (a.device !== 'cpu' && a.device !== 'cuda') throw new Error(`--device must be cpu or cuda, got '${a.device}'`);
const modes = a.mode.split(',');
if (modes.length === 0 || modes.some((m) => m !== 'explicit' && m !== 'latent'))
  throw new Error(`--mode must be explicit, latent or both (explicit,latent), got '${a.mode}'`);
const latentAnswer = int('latent-answer', a['latent-answer'] ?? a['new-tokens'], 1);
if (a.sampling !== 'greedy' && a.sampling !== 'top-p') throw new Error(`--sampling must be greedy or top-p, got '${a.sampling}'`);
const engine = a.engine ?? (a.device === 'cuda' ? 'cuda-graph' : 'compact');
if (!['compact', 'fixed', 'cuda-graph'].includes(engine)) throw new Error(`--engine must be compact, fixed or cuda-graph, got '${engine}'`);
const bandwidth = Number(a['bandwidth-gbs']) * 1e9;
const attention = a['decode-attention'];
if (attention !== 'gqa' && attention !== 'fused') throw new Error(`--decode-attention must be gqa or fused, got '${attention}'`);
const topk = a.topk;
if (topk !== 'fused' && topk !== 'ops') throw new Error(`--topk must be fused or ops, got '${topk}'`);
const feed = a.feed;
if (feed !== 'soft' && feed !== 'hidden') throw new Error(`--feed must be soft or hidden, got '${feed}'`);

let t = performance.now();
let config: ModelConfig;
let weights: readonly NamedTensor[] | string;
let configArg: { config?: ModelConfig } = {};
if (a.model === 'llama-3.2-1b' || a.model === 'tiny-llama') {
  config = a.model === 'llama-3.2-1b' ? llama32_1b() : { ...tinyLlama({ vocabSize: 512 }), maxPositionEmbeddings: 4096 };
  weights = initParameters(config, { seed });
  configArg = { config };
  out(`random-init ${a.model}: ${((performance.now() - t) / 1e3).toFixed(1)} s`);
} else {
  weights = a.model as string;
  config = loadCheckpoint(weights).config;
}

t = performance.now();
const gen = Generator.create({
  ...configArg,
  weights,
  device: a.device === 'cuda' ? { kind: 'cuda', deviceId: 0 } : { kind: 'cpu' },
  dtype: a.dtype as GenerateDtype,
  candidates: int('candidates', a.candidates, 1),
  session: {
    ...(a.profile !== undefined ? { profilePrefix: a.profile } : {}),
    ...(a.threads !== undefined ? { intraOpThreads: int('threads', a.threads, 1) } : {}),
  },
  fixedShapes: engine !== 'compact',
  cudaGraph: engine === 'cuda-graph',
  decodeAttention: attention,
  vocabTopK: topk,
});
out(`load (build + serialize + session): ${((performance.now() - t) / 1e3).toFixed(1)} s on ${a.device}, dtype ${a.dtype}`);

const V = config.vocabSize;
const rng = Rng.fromSeed(seed + 1);
const prompts = Array.from({ length: batch }, () => Array.from({ length: promptLen }, () => rng.int(V)));
const endId = V - 1;
const sampling: Sampling = a.sampling === 'top-p' ? { kind: 'top-p', temperature: 0.6, topP: 0.95, seed } : { kind: 'greedy' };

// Each mode in turn on the one loaded engine (a 7B load takes minutes): its own warm-up, then its measured call.
for (const modeName of modes) {
  const mode: GenerateMode =
    modeName === 'latent' ? { kind: 'latent', topK: 10, maxLatent, latentEndIds: [endId, 0, 1], latentEndId: endId, feed } : { kind: 'explicit' };
  const newTokens = modeName === 'latent' ? latentAnswer : answerTokens;

  // Warm-up with the measured call's shapes (batch, cache capacity): builds the fixed-shape session and
  // captures its CUDA graph outside the measurement.
  t = performance.now();
  await gen.generate({ prompts, mode, sampling, maxNewTokens: newTokens, stopIds: [], batchSize: batch });
  out(`warm-up call: ${((performance.now() - t) / 1e3).toFixed(1)} s`);
  const { results, stats } = await gen.generate({ prompts, mode, sampling, maxNewTokens: newTokens, stopIds: [], batchSize: batch });
  const generated = stats.latentTokens + stats.forcedTokens + stats.answerTokens;
  const steps = stats.steps - stats.batches;
  out(
    `model ${a.model}, batch ${batch}, prompt ${promptLen}, mode ${modeName}${modeName === 'latent' ? ` (maxLatent ${maxLatent})` : ''}, sampling ${a.sampling}, new tokens ${newTokens}`,
  );
  out(
    `latent ${stats.latentTokens}, forced ${stats.forcedTokens}, answer ${stats.answerTokens} tokens; mean #L ${(results.reduce((s, r) => s + r.latentCount, 0) / batch).toFixed(1)}`,
  );
  out(`prefill ${stats.prefillMs.toFixed(0)} ms (${((batch * promptLen) / (stats.prefillMs / 1e3)).toFixed(0)} prompt tokens/s)`);
  out(
    `decode ${stats.decodeMs.toFixed(0)} ms over ${steps} steps (${(stats.decodeMs / Math.max(1, steps)).toFixed(2)} ms/step, ${(stats.rowSteps / (stats.decodeMs / 1e3)).toFixed(0)} tokens/s)`,
  );
  out(
    `total ${stats.totalMs.toFixed(0)} ms: ${(generated / (stats.totalMs / 1e3)).toFixed(0)} generated tokens/s; ${(stats.bytesToHost / Math.max(1, stats.steps)).toFixed(0)} B/step to host, ${(stats.bytesToDevice / Math.max(1, stats.steps)).toFixed(0)} B/step to device`,
  );
  // The decode step's memory-bandwidth limit: every weight read once in the compute dtype (the tied
  // embedding as the LM head; the input rows of the embedding are negligible) + the K/V of every row at
  // the mean cache length over the decode.
  const bytesPerValue = a.dtype === 'float32' ? 4 : 2;
  const params = parameterCount(config) - (config.tieWordEmbeddings ? 0 : config.vocabSize * config.hiddenSize);
  const meanLen = promptLen + steps / 2;
  const kvBytes = 2 * config.numHiddenLayers * config.numKeyValueHeads * config.headDim * batch * meanLen * bytesPerValue;
  const stepBytes = params * bytesPerValue + kvBytes;
  const limit = batch / (stepBytes / bandwidth);
  const decodeRate = stats.rowSteps / (stats.decodeMs / 1e3);
  out(
    `bandwidth limit at ${(bandwidth / 1e12).toFixed(1)} TB/s: ${(stepBytes / 1e9).toFixed(2)} GB per step → ${limit.toFixed(0)} tokens/s; decode at ${((100 * decodeRate) / limit).toFixed(1)} % of it`,
  );
  // The machine-readable line tools/bench/src/table.ts pairs with bench_torch.py's "gen".
  out(
    `BENCH ${JSON.stringify({
      bench: modeName === 'latent' ? 'gen-latent' : 'gen',
      impl: 'latent-sft-ort',
      mode: modeName,
      engine,
      attention,
      topk,
      shared_weights: gen.sharedWeights,
      ...(modeName === 'latent' ? { feed } : {}),
      batch,
      prompt: promptLen,
      new_tokens: newTokens,
      s: stats.totalMs / 1e3,
      new_tokens_per_s: generated / (stats.totalMs / 1e3),
      prefill_ms: stats.prefillMs,
      decode_ms_per_step: stats.decodeMs / Math.max(1, steps),
      h2d_bytes_per_step: stats.bytesToDevice / Math.max(1, stats.steps),
      d2h_bytes_per_step: stats.bytesToHost / Math.max(1, stats.steps),
      decode_tokens_per_s: decodeRate,
      bytes_per_step: stepBytes,
      bandwidth_gbs: bandwidth / 1e9,
      bandwidth_limit_tokens_per_s: limit,
      bandwidth_fraction: decodeRate / limit,
    })}`,
  );
  // The explicit run's prompts and greedy outputs (first 8 rows) for tools/reference/gen_check.py.
  if (a.dump !== undefined && modeName === 'explicit') {
    const rows = results.slice(0, 8).map((r, i) => ({ prompt: prompts[i], output: r.outputIds, latent: r.latentCount }));
    writeFileSync(a.dump, JSON.stringify({ model: a.model, dtype: a.dtype, engine, attention, mode: modeName, rows }));
    out(`wrote ${a.dump}`);
  }
}
if (a.profile !== undefined)
  for (const file of gen.endProfiling()) out(`BENCH ${JSON.stringify({ bench: 'gen-profile', engine, profile: summarizeProfile(file) })}`);
gen.release();
