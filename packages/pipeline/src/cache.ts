// cache-latents (spec §3.7, HEAD variant): the union encoder (step-1 encoder + union encoder LoRA,
// eval mode) over the training set; per latent slot the top-k of h·Wᵀ renormalised over those k.
// Written streamed and resumable: chunk-NNNNNN.safetensors holds `m` I32 [n], `probs` F32 [Σm,k],
// `indices` I32 [Σm,k] for examples [start, end); manifest.json (rewritten atomically after each chunk)
// records the chunks with their sha256, and what the cache is valid for: r, k, LTIM, the tokenizer
// (sha256 of tokenizer.json, family, size), the dataset (spec, count, fingerprint of the token ids)
// and the vocabulary. Phase 2 checks all of it (readLatentCache) and names the first mismatch.
// latent.kind 'hidden' (the "- Hidden State" ablation, spec §7): the chunks hold `m` I32 [n] and
// `hidden` F32 [Σm,d], the encoder's final normed hidden state per latent (what phase 1 fed the decoder);
// the manifest records `latent` ('soft-topk' | 'hidden'; absent in older caches = 'soft-topk'), k = 0
// and the hidden size, and phase 2 refuses a cache of the other kind in one line.
// compute float16 / bfloat16 (the 16-bit path, for large encoders): the graph declares the encoder's base
// weights and W in that dtype, read per tensor by ModelDir.readAs (a checkpoint stored in it as stored,
// others rounded once; no float32 copy of the model on the host, and on the device only W is widened, per
// batch, for h·Wᵀ); the chunks keep their float32 / int32 format, so phase 2 reads them unchanged.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigOf } from '@latent-sft/config';
import { UserError, createProgress, inputError, writeJsonAtomic } from '@latent-sft/core';
import { serialize } from '@latent-sft/graph';
import { DEFAULT_LATENT_SPEC, type LatentSpec, readLatentSpecs, resolveLatentSpec, writeLatentSpec } from '@latent-sft/latent';
import { type LoadedAdapter, type SafetensorsFile, configFieldList, loadAdapter, openSafetensors, writeSafetensors } from '@latent-sft/models';
import {
  type HiddenTeacherLatents,
  type Phase2Teacher,
  type TeacherLatents,
  buildLatentCacheGraph,
  computeHiddenLatents,
  computeLatents,
} from '@latent-sft/phases';
import { type HostTensor, ResidentSession } from '@latent-sft/runtime';
import { type Tokenizer, padId } from '@latent-sft/tokenizer';
import { type RunContext, recordOf, secondsSince } from './context.js';
import { type PreparedData, checkFitsModel, prepareData } from './data.js';
import { type ModelDir, loadModelDir, loadModelTokenizer, toHost, tokenizerSha } from './model.js';
import { checkEncoderOf } from './phase1.js';
import { claimOutDir, requireDir } from './run-dir.js';
import type { cacheLatentsSchema } from './schemas.js';
import { type PhaseSummary, writeSummary } from './summary.js';

export type CacheLatentsConfig = ConfigOf<typeof cacheLatentsSchema>;

export const CACHE_FORMAT = 'latent-sft/latent-cache';
export const CACHE_MANIFEST = 'manifest.json';

/** What a cache holds per latent. */
export type CacheLatentKind = 'soft-topk' | 'hidden';

/** What a cache is valid for. */
export interface CacheIdentity {
  r: number;
  /** Top-k width of soft-topk caches; 0 for hidden caches. */
  k: number;
  /** Absent in caches written before the hidden kind existed: soft-topk. */
  latent?: CacheLatentKind;
  /** Hidden size d (the width of hidden latents). */
  hiddenSize?: number;
  ltim: boolean;
  vocabSize: number;
  tokenizer: { sha256: string; family: string; vocabSize: number };
  dataset: { spec: PreparedData['spec']; count: number; fingerprint: string };
}

export interface CacheChunk {
  file: string;
  start: number;
  end: number;
  sha256: string;
}

export interface CacheManifest extends CacheIdentity {
  format: string;
  version: number;
  chunkSize: number;
  encoder: string;
  adapter: string | null;
  chunks: CacheChunk[];
  complete: boolean;
}

const sha256File = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The latent kind a manifest records (older caches: soft-topk). */
export function cacheLatentKind(m: Pick<CacheIdentity, 'latent'>): CacheLatentKind {
  return m.latent ?? 'soft-topk';
}
const kindOf = cacheLatentKind;

/** The first field where two identities differ, as `field: a vs b`, or null. */
function identityDiff(a: CacheIdentity, b: CacheIdentity): string | null {
  const checks: Array<[string, unknown, unknown]> = [
    ['tokenizer sha256', a.tokenizer.sha256.slice(0, 12), b.tokenizer.sha256.slice(0, 12)],
    ['vocabulary size', a.vocabSize, b.vocabSize],
    ['dataset', JSON.stringify(a.dataset.spec), JSON.stringify(b.dataset.spec)],
    ['dataset count', a.dataset.count, b.dataset.count],
    ['dataset fingerprint', a.dataset.fingerprint.slice(0, 12), b.dataset.fingerprint.slice(0, 12)],
    ['latent kind', kindOf(a), kindOf(b)],
    ['r', a.r, b.r],
    ['k', a.k, b.k],
    ['ltim', a.ltim, b.ltim],
    ['hidden size', a.hiddenSize ?? b.hiddenSize, b.hiddenSize ?? a.hiddenSize], // older manifests record none
  ];
  for (const [f, x, y] of checks) if (x !== y) return `${f}: ${String(x)} vs ${String(y)}`;
  return null;
}

function readManifest(dir: string): CacheManifest {
  const path = join(dir, CACHE_MANIFEST);
  if (!existsSync(path)) throw inputError({ file: path }, 'not found: not a latent cache (run cache-latents)');
  let m: CacheManifest;
  try {
    m = JSON.parse(readFileSync(path, 'utf8')) as CacheManifest;
  } catch (e) {
    throw inputError({ file: path }, `not JSON (${(e as Error).message})`);
  }
  if (m.format !== CACHE_FORMAT) throw inputError({ file: path, field: 'format' }, `expected ${CACHE_FORMAT}, got ${JSON.stringify(m.format)}`);
  checkManifestFields(m, path);
  return m;
}

const CHUNK_FILE = /^chunk-\d{6,}\.safetensors$/;
const isCount = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;

/** The manifest's own fields: plain chunk file names inside the folder, contiguous ranges, sane r / k / kind. */
function checkManifestFields(m: CacheManifest, path: string): void {
  const kind: unknown = m.latent ?? 'soft-topk';
  if (kind !== 'soft-topk' && kind !== 'hidden')
    throw inputError({ file: path, field: 'latent' }, `expected 'soft-topk' or 'hidden', got ${JSON.stringify(kind)}`);
  if (!isCount(m.r, 1)) throw inputError({ file: path, field: 'r' }, `expected a positive integer, got ${JSON.stringify(m.r)}`);
  if (!isCount(m.k, kind === 'hidden' ? 0 : 1))
    throw inputError({ file: path, field: 'k' }, `expected ${kind === 'hidden' ? '0' : 'a positive integer'}, got ${JSON.stringify(m.k)}`);
  if (m.hiddenSize !== undefined && !isCount(m.hiddenSize, 1))
    throw inputError({ file: path, field: 'hiddenSize' }, `expected a positive integer, got ${JSON.stringify(m.hiddenSize)}`);
  if (!Array.isArray(m.chunks)) throw inputError({ file: path, field: 'chunks' }, 'expected an array');
  let next = 0;
  m.chunks.forEach((c: Partial<CacheChunk>, i) => {
    const field = `chunks[${i}]`;
    if (typeof c.file !== 'string' || !CHUNK_FILE.test(c.file)) {
      throw inputError({ file: path, field: `${field}.file` }, `${JSON.stringify(c.file)} is not a chunk file name of this folder (chunk-NNNNNN.safetensors)`);
    }
    if (c.start !== next || !isCount(c.end, next + 1) || typeof c.sha256 !== 'string') {
      throw inputError(
        { file: path, field },
        `expected examples [${next}, end) with end > start and a sha256, got ${JSON.stringify({ start: c.start, end: c.end })}`,
      );
    }
    next = c.end;
  });
}

/** Throws unless tensor `name` of a chunk is [rows, cols]. */
function checkChunkShape(st: SafetensorsFile, name: string, rows: number, cols: number, what: string): void {
  if (!st.has(name)) throw inputError({ file: st.path, field: name }, `missing: not a ${what} chunk`);
  const shape = st.info(name).shape;
  if (shape.length !== 2 || shape[0] !== rows || shape[1] !== cols) {
    throw inputError(
      { file: st.path, field: name },
      `shape [${shape.join(', ')}] does not match the manifest ([Σm, ${what === 'hidden' ? 'hiddenSize' : 'k'}] = [${rows}, ${cols}])`,
    );
  }
}

/**
 * The latent spec a cache is made with: the latent.json of the union encoder adapter, the step-1
 * encoder and the decoder (which must agree), with the config's latent block checked against them.
 * Only soft-topk and hidden latents can be cached.
 */
export function cacheLatentSpec(config: CacheLatentsConfig): LatentSpec {
  const spec = resolveLatentSpec(config.latent, readLatentSpecs([config.adapter, config.encoder, config.decoder]), {
    where: 'cache-latents config',
    prefix: 'latent.',
    fallback: DEFAULT_LATENT_SPEC,
  });
  if (spec.kind === 'soft-full') throw inputError({ field: 'latent.kind' }, 'cache-latents caches soft-topk or hidden latents, not soft-full');
  return spec;
}

/** Runs the union encoder over the data and writes (or completes) the cache in <out> (+ its latent.json). */
export async function runCacheLatents(config: CacheLatentsConfig, ctx: RunContext): Promise<PhaseSummary> {
  const t0 = performance.now();
  const app = 'cache-latents';
  const dec = loadModelDir(config.decoder, 'decoder', config.allowConfigFields);
  const enc = loadModelDir(config.encoder, 'step-1 encoder', config.allowConfigFields);
  checkEncoderOf(dec.config, enc, 'encoder');
  if (config.adapter !== undefined) requireDir(config.adapter, 'union encoder adapter');
  const adapter =
    config.adapter !== undefined ? loadAdapter(config.adapter, { model: enc.config, allowConfigFields: configFieldList(config.allowConfigFields) }) : undefined;
  const tok = await loadModelTokenizer(config.decoder, 'the decoder folder');
  const data = prepareData(config.data, tok);
  const spec = cacheLatentSpec(config);
  checkFitsModel(data.examples, enc.config.maxPositionEmbeddings, spec.compressionRate, config.encoder);
  const hidden = spec.kind === 'hidden';
  const identity: CacheIdentity = {
    r: spec.compressionRate,
    k: hidden ? 0 : Math.min(spec.topK, dec.config.vocabSize),
    latent: hidden ? 'hidden' : 'soft-topk',
    hiddenSize: dec.config.hiddenSize,
    ltim: spec.ltim,
    vocabSize: dec.config.vocabSize,
    tokenizer: { sha256: tokenizerSha(config.decoder), family: tok.family, vocabSize: tok.vocabSize },
    dataset: { spec: data.spec, count: data.examples.length, fingerprint: data.fingerprint },
  };
  const lora = adapter?.config;
  if (lora !== undefined && lora.taskType !== 'FEATURE_EXTRACTION')
    throw inputError({ file: config.adapter, field: 'task_type' }, 'expected the union encoder adapter (FEATURE_EXTRACTION)');
  const manifest: CacheManifest = {
    format: CACHE_FORMAT,
    version: 1,
    ...identity,
    chunkSize: config.chunkSize,
    encoder: config.encoder,
    adapter: config.adapter ?? null,
    chunks: [],
    complete: false,
  };
  const prev = config.resume && existsSync(join(config.out, CACHE_MANIFEST)) ? readManifest(config.out) : null;
  if (prev !== null) {
    const diff = identityDiff(prev, identity) ?? (prev.chunkSize !== config.chunkSize ? `chunkSize: ${prev.chunkSize} vs ${config.chunkSize}` : null);
    if (diff !== null)
      throw new UserError(`${config.out}: the cache there was made for other inputs (${diff}); choose another output dir; nothing was overwritten`);
  }
  const lock = claimOutDir(config.out, recordOf(app, config, ctx), config.resume);
  try {
    return await writeCache(config, ctx, { t0, dec, enc, adapter, tok, data, identity, manifest, prev, spec });
  } finally {
    lock.release();
  }
}

async function writeCache(
  config: CacheLatentsConfig,
  ctx: RunContext,
  o: {
    t0: number;
    dec: ModelDir;
    enc: ModelDir;
    adapter: LoadedAdapter | undefined;
    tok: Tokenizer;
    data: PreparedData;
    identity: CacheIdentity;
    manifest: CacheManifest;
    prev: CacheManifest | null;
    spec: LatentSpec;
  },
): Promise<PhaseSummary> {
  const { t0, dec, enc, adapter, tok, data, identity, prev, spec } = o;
  let manifest = o.manifest;
  const app = 'cache-latents';
  const logger = ctx.logger;
  const hidden = spec.kind === 'hidden';
  if (prev !== null) {
    // Keep the chunks that verify; later ones are recomputed.
    const good: CacheChunk[] = [];
    for (const c of prev.chunks) {
      const p = join(config.out, c.file);
      if (!existsSync(p) || sha256File(p) !== c.sha256) break;
      good.push(c);
    }
    manifest = { ...manifest, chunks: good };
    logger.info({ chunks: good.length, examples: good.length === 0 ? 0 : good[good.length - 1]!.end }, 'resuming the cache');
  }
  writeJsonAtomic(join(config.out, CACHE_MANIFEST), manifest);
  writeLatentSpec(config.out, spec);

  const lora = adapter?.config;
  const graph = buildLatentCacheGraph(dec.config, {
    k: spec.topK,
    latent: hidden ? 'hidden' : 'soft',
    compute: config.compute,
    ...(lora !== undefined ? { lora: { ...lora, dropout: 0 } } : {}),
  });
  // The graph's weights are read one tensor at a time (the decoder's W alone, not the whole decoder), each
  // just before its upload (ResidentSession reads a function's tensor when it uploads it), so the host holds
  // one weight at a time in the graph's dtype (16 bits at a 16-bit compute: as stored in a bf16
  // checkpoint). They stay on the device; each batch moves only its ids and masks (7B: 15 GB in bf16, 30 GB
  // in float32).
  const specs = (prefix: string) => Object.fromEntries(graph.inputs.filter((i) => i.name.startsWith(prefix)).map((i) => [i.name, { dtype: i.dtype }]));
  const onDemand = (dir: ModelDir, names: Record<string, { dtype: string }>, prefix: string): Record<string, () => HostTensor> =>
    Object.fromEntries(Object.entries(names).map(([n, s]) => [n, () => dir.readAs({ [n]: s }, prefix)[n]!]));
  const loraNames = new Set((adapter?.tensors ?? []).map((t) => `encoder.${t.name}`));
  const encSpecs = Object.fromEntries(Object.entries(specs('encoder.')).filter(([n]) => !loraNames.has(n)));
  const session = ResidentSession.create(
    serialize(graph).model,
    {
      ...onDemand(enc, encSpecs, 'encoder.'),
      ...(adapter !== undefined ? toHost(adapter.tensors, 'encoder.') : {}),
      ...(hidden ? {} : onDemand(dec, specs('decoder.'), 'decoder.')), // hidden latents need no W
    },
    { device: config.device === 'cuda' ? { kind: 'cuda' } : { kind: 'cpu' } },
  );
  const N = data.examples.length;
  const opts = { r: spec.compressionRate, compressId: dec.config.vocabSize, padId: padId(tok), ltim: spec.ltim };
  const startAt = manifest.chunks.length === 0 ? 0 : manifest.chunks[manifest.chunks.length - 1]!.end;
  const progress = createProgress({ total: N - startAt, label: app, logger });
  let slots = 0;
  try {
    for (let start = startAt; start < N; start += config.chunkSize) {
      const end = Math.min(N, start + config.chunkSize);
      const teachers: Array<TeacherLatents | HiddenTeacherLatents> = [];
      for (let b = start; b < end; b += config.batchSize) {
        const batch = data.examples.slice(b, Math.min(end, b + config.batchSize));
        teachers.push(...(await (hidden ? computeHiddenLatents(session, {}, batch, opts) : computeLatents(session, {}, batch, opts))));
        progress.tick(batch.length);
      }
      const total = teachers.reduce((s, t) => s + t.m, 0);
      const k = hidden ? dec.config.hiddenSize : identity.k;
      const values = new Float32Array(total * k);
      const indices = new Int32Array(total * k);
      let at = 0;
      for (const t of teachers) {
        if (t.kind === 'hidden') values.set(t.hidden, at * k);
        else {
          values.set(t.probs, at * k);
          if (t.indices !== undefined) indices.set(t.indices, at * k);
        }
        at += t.m;
      }
      slots += total;
      const file = `chunk-${String(start).padStart(6, '0')}.safetensors`;
      const path = join(config.out, file);
      const m = { name: 'm', dtype: 'I32' as const, shape: [teachers.length], data: Int32Array.from(teachers.map((t) => t.m)) };
      writeSafetensors(
        path,
        hidden
          ? [m, { name: 'hidden', dtype: 'F32', shape: [total, k], data: values }]
          : [m, { name: 'probs', dtype: 'F32', shape: [total, k], data: values }, { name: 'indices', dtype: 'I32', shape: [total, k], data: indices }],
        { format: CACHE_FORMAT },
      );
      manifest = { ...manifest, chunks: [...manifest.chunks, { file, start, end, sha256: sha256File(path) }] };
      writeJsonAtomic(join(config.out, CACHE_MANIFEST), manifest);
    }
  } finally {
    await session.release();
  }
  progress.done();
  manifest = { ...manifest, complete: true };
  writeJsonAtomic(join(config.out, CACHE_MANIFEST), manifest);
  const summary: PhaseSummary = {
    app,
    out: config.out,
    steps: 0,
    first: {},
    last: {},
    wallSeconds: secondsSince(t0),
    notes: {
      examples: N,
      computed: N - startAt,
      chunks: manifest.chunks.length,
      latent: spec.kind,
      compute: config.compute,
      k: identity.k,
      compressionRate: spec.compressionRate,
      ...(N > startAt ? { meanLatents: slots / (N - startAt) } : {}),
    },
  };
  writeSummary(summary);
  logger.info({ ...summary }, 'done');
  return summary;
}

/** The latent spec a cache's manifest implies (caches from before latent.json; ltsum is not recorded there: the default). */
export function manifestLatentSpec(m: CacheIdentity): LatentSpec {
  const kind = cacheLatentKind(m);
  return { kind, compressionRate: m.r, topK: kind === 'hidden' ? DEFAULT_LATENT_SPEC.topK : m.k, ltim: m.ltim, ltsum: DEFAULT_LATENT_SPEC.ltsum };
}

/** Throws unless the cache in `dir` was made with `spec` (kind, compression rate, top-k of soft caches, LTIM). */
export function checkCacheSpec(dir: string, m: CacheIdentity, spec: LatentSpec): void {
  const file = join(dir, CACHE_MANIFEST);
  const kind = cacheLatentKind(m);
  const checks: Array<[string, unknown, unknown]> = [
    ['kind', spec.kind, kind],
    ['compressionRate', spec.compressionRate, m.r],
    ['ltim', spec.ltim, m.ltim],
    ...(kind === 'hidden' ? [] : [['topK', spec.topK, m.k] as [string, unknown, unknown]]),
  ];
  for (const [f, want, got] of checks) {
    if (want !== got)
      throw new UserError(
        `latent spec mismatch: the model's latent spec has ${f} = ${JSON.stringify(want)} but ${file} records ${JSON.stringify(got)}; rebuild the cache for this model`,
      );
  }
}

/** What readLatentCache checks: tokenizer, vocabulary, dataset; optionally the latent kind and hidden size. */
export type CacheExpectation = Omit<CacheIdentity, 'r' | 'k' | 'ltim' | 'latent' | 'hiddenSize'> & {
  /** The kind the run needs (omit: accept the one the manifest records). */
  latent?: CacheLatentKind;
  /** The model's hidden size (checked against hidden caches). */
  hiddenSize?: number;
};

/**
 * Reads a complete cache and checks it was made for `expect` (tokenizer, vocabulary, dataset, latent
 * kind, hidden size of hidden caches); a mismatch is a one-line error naming the field. Returns one
 * teacher per example, in order: TeacherLatents (soft-topk) or HiddenTeacherLatents (hidden).
 */
export function readLatentCache(dir: string, expect: CacheExpectation): { manifest: CacheManifest; teachers: Phase2Teacher[] } {
  requireDir(dir, 'latent cache');
  const m = readManifest(dir);
  const kind = cacheLatentKind(m);
  if (expect.latent !== undefined && expect.latent !== kind) {
    throw new UserError(
      `${dir}: latent cache holds ${kind} latents but this run expects ${expect.latent} (--latent.kind); use a cache made with cache-latents --latent.kind ${expect.latent}, or pass --latent.kind ${kind}`,
    );
  }
  const base = { r: 0, k: 0, ltim: false, latent: kind };
  const diff =
    identityDiff({ ...m, ...base, hiddenSize: 0 }, { ...expect, ...base, hiddenSize: 0 }) ??
    (kind === 'hidden' && expect.hiddenSize !== undefined && m.hiddenSize !== expect.hiddenSize
      ? `hidden size: ${String(m.hiddenSize)} vs ${expect.hiddenSize}`
      : null);
  if (diff !== null) throw new UserError(`${dir}: latent cache does not match this run (${diff}); rebuild it with cache-latents for this model and data`);
  const last = m.chunks[m.chunks.length - 1];
  if (!m.complete || last === undefined || last.end !== m.dataset.count) {
    throw new UserError(`${dir}: latent cache incomplete (${last?.end ?? 0} of ${m.dataset.count} examples); finish it with cache-latents --resume`);
  }
  const teachers: Phase2Teacher[] = [];
  for (const c of m.chunks) {
    const path = join(dir, c.file);
    if (!existsSync(path)) throw inputError({ file: path }, 'cache chunk missing');
    if (sha256File(path) !== c.sha256) throw inputError({ file: path }, 'cache chunk corrupted (sha256 differs from the manifest)');
    const st = openSafetensors(path);
    if (!st.has('m')) throw inputError({ file: path, field: 'm' }, 'missing: not a latent-cache chunk');
    const ms = st.readTensor('m') as Int32Array;
    if (ms.length !== c.end - c.start) throw inputError({ file: path, field: 'm' }, `${ms.length} examples, the manifest says ${c.end - c.start}`);
    const total = ms.reduce((a, b) => a + b, 0);
    if (kind === 'hidden') {
      const d = m.hiddenSize ?? 0;
      checkChunkShape(st, 'hidden', total, d, 'hidden');
      const hs = st.readTensor('hidden') as Float32Array;
      let at = 0;
      for (const mm of ms) {
        teachers.push({ kind: 'hidden', m: mm, d, hidden: hs.slice(at * d, (at + mm) * d) });
        at += mm;
      }
      if (at * d !== hs.length) throw inputError({ file: path, field: 'hidden' }, `${hs.length} values, expected Σm·d = ${at}·${d}`);
      continue;
    }
    checkChunkShape(st, 'probs', total, m.k, 'soft-topk');
    checkChunkShape(st, 'indices', total, m.k, 'soft-topk');
    const probs = st.readTensor('probs') as Float32Array;
    const indices = st.readTensor('indices') as Int32Array;
    let at = 0;
    for (const mm of ms) {
      teachers.push({ m: mm, k: m.k, probs: probs.slice(at * m.k, (at + mm) * m.k), indices: indices.slice(at * m.k, (at + mm) * m.k) });
      at += mm;
    }
  }
  return { manifest: m, teachers };
}
