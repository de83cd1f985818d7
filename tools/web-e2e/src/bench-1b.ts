// A Llama-3.2-1B-shape model in Chromium's WASM backend: random-init weights (seeded, N(0, 0.02), norms 1)
// of the 1B shape (16 layers, hidden 2048, MLP 8192, 32/8 heads, vocab 128256, tied) are exported with
// writeWebFolder (weights generated one tensor at a time, never a float32 checkpoint on disk) with the
// Llama-3.2 tokenizer, served on 127.0.0.1 (cross-origin isolated: multi-threaded WASM) and run by
// Debian's chromium through the page: load time (fetch + session), then one problem with a few latent
// and answer steps (prefill and per-step decode time). Prints one JSON line.
// Usage: pnpm --filter @latent-sft/web-e2e bench:1b [--dtype int8|float16|float32] [--out DIR] [--steps N] [--reuse]
// --reuse: time an existing --out folder of the same dtype again (only app.js is rebuilt).
// wasm32 memory is 4 GiB: float32 weights (4.9 GB) cannot load; see docs/benchmarks/web-1b.md.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Rng, silentLogger, writeFileAtomic } from '@latent-sft/core';
import { llama32_1b } from '@latent-sft/models';
import { materializeTokenizer } from '@latent-sft/tokenizer';
import { type LatentWebApi, WEB_MANIFEST_FILE, type WebManifest, type WebWeightDtype, bundlePage, writeWebFolder } from '@latent-sft/web';
import { launchChromium, serveFolder } from './serve.js';

const { values: a } = parseArgs({
  options: {
    dtype: { type: 'string', default: 'int8' },
    out: { type: 'string' },
    steps: { type: 'string', default: '4' },
    reuse: { type: 'boolean', default: false },
  },
});
const dtype = a.dtype as WebWeightDtype;
const steps = Number(a.steps);
const out = a.out ?? mkdtempSync(join(tmpdir(), 'web-1b-'));

const config = llama32_1b();

const t0 = performance.now();
if (a.reuse) {
  const m = JSON.parse(readFileSync(join(out, WEB_MANIFEST_FILE), 'utf8')) as WebManifest;
  if (m.model.weightDtype !== dtype) throw new Error(`--reuse: ${out} holds ${m.model.weightDtype} weights, not ${dtype}`);
  writeFileAtomic(join(out, 'app.js'), await bundlePage());
} else {
  const tokDir = join(out, 'tokenizer-src');
  materializeTokenizer('llama-3.2', tokDir);
  const root = Rng.fromSeed(1234);
  let index = 0;
  await writeWebFolder(
    {
      out,
      config,
      tokenizer: tokDir,
      spec: { kind: 'soft-topk', compressionRate: 4, topK: 10, ltim: true, ltsum: true },
      weightDtype: dtype,
      maxPositions: 2048,
      read: (_name, shape) => {
        const rng = root.fork(index++);
        const data = new Float32Array(shape.reduce((x, y) => x * y, 1));
        if (shape.length === 1) data.fill(1);
        else for (let i = 0; i < data.length; i++) data[i] = 0.02 * rng.normal();
        return data;
      },
    },
    silentLogger,
  );
}
const exportMs = performance.now() - t0;

const server = await serveFolder(out, { isolate: true });
const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(1_800_000);
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  const tLoad = performance.now();
  await page.goto(`${server.url}?ep=wasm`, { waitUntil: 'load' });
  const ready = await page.evaluate(() => (globalThis as unknown as { __latentWeb: LatentWebApi }).__latentWeb.ready);
  const loadWallMs = performance.now() - tLoad;
  const [r] = await page.evaluate(
    (n) => (globalThis as unknown as { __latentWeb: LatentWebApi }).__latentWeb.generate(['What is 2 + 3?'], { maxLatent: n, maxNewTokens: n, animate: false }),
    steps,
  );
  if (r === undefined) throw new Error(`no result; page errors: ${errors.join(' | ')}`);
  const isolated = await page.evaluate(() => (globalThis as unknown as { crossOriginIsolated: boolean }).crossOriginIsolated);
  process.stdout.write(
    `${JSON.stringify({
      shape: 'llama-3.2-1b',
      dtype,
      exportMs: Math.round(exportMs),
      reused: a.reuse,
      ep: ready.ep,
      crossOriginIsolated: isolated,
      wasmThreads: ready.threads,
      loadMs: Math.round(ready.loadMs),
      loadWallMs: Math.round(loadWallMs),
      promptTokens: r.promptIds.length,
      prefillMs: Math.round(r.prefillMs),
      decodeSteps: r.steps - 1,
      decodeMsPerStep: Math.round(r.decodeMs / Math.max(1, r.steps - 1)),
      latentCount: r.latentCount,
      answerTokens: r.outputIds.length,
      errors,
    })}\n`,
  );
} finally {
  await browser.close();
  await server.close();
}
