// exportWeb: an HF checkpoint folder → a static folder that runs latent reasoning in a browser:
//   model.onnx (+ model.weights)   the web step graph (step-graph.ts; standard ONNX ops only)
//   tokenizer.json, tokenizer_config.json, latent.json, web.json (manifest.ts)
//   index.html, app.js             the page (page/*.ts bundled by esbuild for the browser)
//   ort-wasm-simd-threaded.jsep.wasm  onnxruntime-web's binary (WASM and WebGPU), so nothing is fetched from elsewhere
// Every file is written atomically. Serve the folder over HTTP (browsers do not fetch from file://).
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Logger, inputError, writeFileAtomic, writeJsonAtomic } from '@latent-sft/core';
import { saveModel } from '@latent-sft/graph';
import { DEFAULT_LATENT_SPEC, LATENT_SPEC_FILE, type LatentSpec, readLatentSpec, writeLatentSpec } from '@latent-sft/latent';
import { type ModelConfig, type ParseConfigOptions, loadCheckpoint } from '@latent-sft/models';
import { END_THINK, THINK, latentMarkerIds, loadTokenizer, padId, promptFor } from '@latent-sft/tokenizer';
import { build, type Plugin } from 'esbuild';
import { PROBLEM_SLOT, WEB_MANIFEST_FILE, type WebManifest } from './manifest.js';
import { PAGE_HTML } from './page/html.js';
import { type WebWeightDtype, type WeightReader, buildWebStepGraph } from './step-graph.js';

/** Options of exportWeb. */
export interface ExportWebOptions {
  /** HF checkpoint folder (config.json + model.safetensors; latent.json when trained here). */
  model: string;
  out: string;
  /** Tokenizer folder (default: the model folder). */
  tokenizer?: string;
  /** Storage dtype of the weights (default float32; int8: weight-only per row; compute is float32 either way). */
  weightDtype?: WebWeightDtype;
  /** The page's defaults (spec: 128 latents). */
  maxLatent?: number;
  maxNewTokens?: number;
  /** RoPE table length (default min(max_position_embeddings, 4096)). */
  maxPositions?: number;
  /** Weights above this many bytes go to model.weights (default 64 MiB). */
  externalDataBytes?: number;
  configOptions?: ParseConfigOptions;
}

/** What exportWeb wrote. */
export interface ExportWebResult {
  out: string;
  files: string[];
  manifest: WebManifest;
}

/** The onnxruntime-web binary the default bundle (WebGPU + WASM) loads. */
export const ORT_WASM = 'ort-wasm-simd-threaded.jsep.wasm';

const here = fileURLToPath(new URL('.', import.meta.url));

/** Node built-ins are never called by the page; packages that import them for other exports get a stub that throws. */
const nodeStub: Plugin = {
  name: 'node-builtins-stub',
  setup(b) {
    b.onResolve({ filter: /^node:/ }, (a) => ({ path: a.path, namespace: 'node-stub' }));
    b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (a) => ({
      contents: `module.exports = new Proxy({}, { get: (_, k) => k === '__esModule' ? false : () => { throw new Error(${JSON.stringify(`${a.path} is not available in the browser`)}); } });`,
      loader: 'js',
    }));
  },
};

/** The page's JavaScript: page/main bundled for the browser (from sources in the repo, from dist when installed). */
export async function bundlePage(): Promise<string> {
  const source = join(here, 'page', 'main.ts');
  const fromSource = existsSync(source);
  const r = await build({
    entryPoints: [fromSource ? source : join(here, 'page', 'main.js')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    write: false,
    logLevel: 'silent',
    conditions: fromSource ? ['@latent-sft/source'] : [],
    plugins: [nodeStub],
  });
  const js = r.outputFiles[0];
  if (js === undefined) throw new Error('esbuild produced no bundle for the page');
  return js.text;
}

function positiveInt(v: number, field: string, min = 1): number {
  if (!Number.isSafeInteger(v) || v < min) throw inputError({ field }, `must be an integer >= ${min}, got ${v}`);
  return v;
}

/** Writes the export folder described in the file header from an HF checkpoint folder. */
export async function exportWeb(o: ExportWebOptions, logger: Logger): Promise<ExportWebResult> {
  const ck = loadCheckpoint(o.model, o.configOptions ?? {});
  const recorded = readLatentSpec(o.model);
  if (recorded === null) logger.warn({ model: o.model, spec: DEFAULT_LATENT_SPEC }, `no ${LATENT_SPEC_FILE} beside the model: using the default latent spec`);
  return writeWebFolder(
    {
      ...o,
      config: ck.config,
      read: (name) => ck.tensors.readTensor(name, { as: 'float32' }) as Float32Array,
      tokenizer: o.tokenizer ?? o.model,
      spec: recorded?.spec ?? { ...DEFAULT_LATENT_SPEC },
    },
    logger,
  );
}

/** What writeWebFolder exports: a model given as its config and a weight reader (a checkpoint, or random weights for benchmarks). */
export interface WebFolderOptions extends Omit<ExportWebOptions, 'model' | 'configOptions' | 'tokenizer'> {
  config: ModelConfig;
  read: WeightReader;
  tokenizer: string;
  spec: LatentSpec;
}

/** Writes the export folder of a model given by config + weight reader. */
export async function writeWebFolder(o: WebFolderOptions, logger: Logger): Promise<ExportWebResult> {
  const out = resolve(o.out);
  const c = o.config;
  const spec = o.spec;
  const tokDir = o.tokenizer;
  const tok = await loadTokenizer(tokDir);
  if (tok.vocabSize > c.vocabSize)
    throw inputError({ field: '--tokenizer' }, `the tokenizer has ${tok.vocabSize} ids but the model's vocab_size is ${c.vocabSize}`);
  const weightDtype = o.weightDtype ?? 'float32';
  if (!['float32', 'float16', 'int8'].includes(weightDtype))
    throw inputError({ field: '--dtype' }, `must be float32, float16 or int8, got '${String(weightDtype)}'`);
  const maxPositions = positiveInt(o.maxPositions ?? Math.min(c.maxPositionEmbeddings, 4096), '--max-positions');
  if (maxPositions > c.maxPositionEmbeddings)
    throw inputError({ field: '--max-positions' }, `${maxPositions} exceeds max_position_embeddings ${c.maxPositionEmbeddings}`);
  const maxLatent = positiveInt(o.maxLatent ?? 128, '--max-latent', 0);
  const maxNewTokens = positiveInt(o.maxNewTokens ?? 64, '--max-new-tokens');

  const template = promptFor(tok, PROBLEM_SLOT).prefix;
  if (template.split(PROBLEM_SLOT).length !== 2) throw new Error('the prompt template does not hold the problem exactly once');
  const eos = Array.isArray(c.eosTokenId) ? c.eosTokenId : [c.eosTokenId];
  const stopIds = [...new Set([tok.eosId, padId(tok), ...eos.filter((id) => id < tok.vocabSize)])];
  const feed = spec.kind === 'hidden' ? 'hidden' : 'soft';

  mkdirSync(out, { recursive: true });
  const t0 = performance.now();
  const g = buildWebStepGraph(c, o.read, { latentTopK: spec.topK, feed, weightDtype, maxPositions });
  let bytes = 0;
  for (const t of g.initializers.values()) bytes += t.data.byteLength;
  const external = bytes > (o.externalDataBytes ?? 64 * 2 ** 20) ? 'model.weights' : null;
  saveModel(g, join(out, 'model.onnx'), external === null ? {} : { externalData: { path: join(out, external), thresholdBytes: 1024 } });
  logger.info({ weightDtype, weightBytes: bytes, external, ms: Math.round(performance.now() - t0) }, 'wrote the web step graph');

  for (const f of ['tokenizer.json', 'tokenizer_config.json']) writeFileAtomic(join(out, f), readFileSync(join(tokDir, f)));
  writeLatentSpec(out, spec);
  const ortWasm = createRequire(import.meta.url).resolve(`onnxruntime-web/${ORT_WASM}`);
  const tmp = join(out, `${ORT_WASM}.tmp-${process.pid}`);
  copyFileSync(ortWasm, tmp);
  renameSync(tmp, join(out, ORT_WASM));
  writeFileAtomic(join(out, 'app.js'), await bundlePage());
  writeFileAtomic(join(out, 'index.html'), PAGE_HTML);
  const manifest: WebManifest = {
    format: 1,
    model: {
      file: 'model.onnx',
      externalData: external,
      weightDtype,
      layers: c.numHiddenLayers,
      kvHeads: c.numKeyValueHeads,
      headDim: c.headDim,
      hiddenSize: c.hiddenSize,
      vocabSize: c.vocabSize,
      maxPositions,
    },
    latent: { spec, feed, endThinkIds: latentMarkerIds(tok).endThink },
    prompt: { template, think: THINK, endThink: END_THINK },
    stopIds,
    padId: padId(tok),
    subset: tok.subset === null ? null : [...tok.subset],
    maxLatent,
    maxNewTokens,
    ortWasm: basename(ORT_WASM),
  };
  writeJsonAtomic(join(out, WEB_MANIFEST_FILE), manifest);
  const files = [
    'model.onnx',
    ...(external === null ? [] : [external]),
    'tokenizer.json',
    'tokenizer_config.json',
    'latent.json',
    WEB_MANIFEST_FILE,
    'app.js',
    'index.html',
    ORT_WASM,
  ];
  logger.info({ out, files: files.length }, 'web export written');
  return { out, files, manifest };
}
