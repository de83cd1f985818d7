// The exported page in a real browser: a random-init tiny Llama with the real Llama-3.2 tokenizer (the
// full vocabulary, and a vocabulary subset as the tiny pipeline's models have) goes through the export-web CLI; the folder is served on 127.0.0.1 and Debian's chromium (playwright-core,
// WASM backend, one thread) runs latent decoding on three problems through the page's own API
// (window.__latentWeb). The prompt ids (browser tokenizer + prompt format), every greedy latent step's
// top-k ids and probabilities, the latent stop, and the answer tokens must equal what the Node engine
// (@latent-sft/generate's Generator, ORT CPU, float32) produces for the same prompts and model.
//
// Chromium: $CHROMIUM_PATH or /usr/bin/chromium. Without it the test is skipped, unless
// REPORT_BROWSER_REQUIRED=1 (.ci/run installs chromium and sets it).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Generator, type GenerationResult } from '@latent-sft/generate';
import { writeLatentSpec } from '@latent-sft/latent';
import { saveCheckpoint } from '@latent-sft/models';
import { writeRandomModel } from '@latent-sft/pipeline';
import { THINK, latentMarkerIds, loadTokenizer, materializeTokenizer, padId, promptFor, writeVocabSubset } from '@latent-sft/tokenizer';
import type { LatentWebApi, PageResult, WebManifest } from '@latent-sft/web';
import { describe, expect, it } from 'vitest';
import { chromiumPath, launchChromium, serveFolder } from './serve.js';

const root = new URL('../../..', import.meta.url).pathname;
const required = process.env['REPORT_BROWSER_REQUIRED'] === '1';
const outDir = new URL('../test-results', import.meta.url).pathname;

/** ORT-web WASM vs ORT-node CPU, both float32 (different kernels and summation orders). */
const PROBS = { atol: 1e-4, rtol: 0 };
/** Two logits closer than this may come out of TopK in either order on the two runtimes. */
const TIE_LOGIT_GAP = 1e-4;
const TOP_K = 4;
const MAX_LATENT = 6;
const MAX_NEW = 6;
const PROBLEMS = [
  'What is 2 + 3?',
  'Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether?',
  'Ünïcødé 🙂 costs 7€; how much are 3?',
];

/** The top-k ids of one step, with runs of near-tied probabilities (log-ratio < TIE_LOGIT_GAP) sorted, so either order compares equal. */
function tieGroups(ids: readonly number[], probs: readonly number[]): number[][] {
  const groups: number[][] = [];
  ids.forEach((id, j) => {
    const prev = groups[groups.length - 1];
    if (prev !== undefined && j > 0 && Math.log((probs[j - 1] as number) / (probs[j] as number)) < TIE_LOGIT_GAP) prev.push(id);
    else groups.push([id]);
  });
  return groups.map((g) => g.sort((a, b) => a - b));
}

describe.skipIf(!required && !existsSync(chromiumPath))('exported web page in chromium', () => {
  it.each(['full vocabulary', 'vocabulary subset'] as const)(
    '%s: latent decoding on onnxruntime-web (WASM) gives the Node engine’s latent steps and answers',
    async (vocab) => {
      const tmp = mkdtempSync(join(tmpdir(), 'web-e2e-'));
      const modelDir = join(tmp, 'model');
      if (vocab === 'vocabulary subset') {
        // Only the specials, the byte-level alphabet and the first two problems' tokens: the emoji and the
        // prompt's instruction are spelled in byte-level pieces (the page must map ids as Tokenizer does).
        materializeTokenizer('llama-3.2', modelDir);
        const full = await loadTokenizer(modelDir);
        writeVocabSubset(modelDir, full.subsetFor(PROBLEMS.slice(0, 2)));
      }
      // A random tiny model, its weights scaled so that logits are far apart (no near-ties on the greedy path).
      const m = await writeRandomModel(modelDir, 'llama-3.2', { hiddenSize: 32, intermediateSize: 64, layers: 2, heads: 2, kvHeads: 1 }, 11);
      saveCheckpoint(
        modelDir,
        m.config,
        m.tensors.map((t) => ({ ...t, data: t.data.map((v) => v * 12) })),
        { dtype: 'float32' },
      );
      writeLatentSpec(modelDir, { kind: 'soft-topk', compressionRate: 4, topK: TOP_K, ltim: true, ltsum: true });
      const site = join(tmp, 'site');
      const r = spawnSync(
        join(root, 'node_modules/.bin/tsx'),
        [
          '--conditions=@latent-sft/source',
          join(root, 'apps/export-web/src/main.ts'),
          '--model',
          modelDir,
          '--out',
          site,
          '--max-latent',
          String(MAX_LATENT),
          '--max-new-tokens',
          String(MAX_NEW),
        ],
        { cwd: root, encoding: 'utf8' },
      );
      if (r.status !== 0) throw new Error(`export-web failed (${r.status}):\n${r.stderr}`);
      expect(JSON.parse(r.stdout).files).toEqual(expect.arrayContaining(['model.onnx', 'index.html', 'app.js', 'web.json', 'latent.json', 'tokenizer.json']));
      const manifest = JSON.parse(readFileSync(join(site, 'web.json'), 'utf8')) as WebManifest;

      // The Node engine on the same model and prompts.
      const tok = await loadTokenizer(modelDir);
      expect(manifest.subset === null).toBe(vocab === 'full vocabulary');
      const endThink = latentMarkerIds(tok).endThink;
      expect(manifest.latent.endThinkIds).toEqual(endThink);
      expect(manifest.stopIds).toEqual([tok.eosId, padId(tok)]);
      const prompts = PROBLEMS.map((p) => [...tok.encode(promptFor(tok, p).prefix), ...tok.encode(THINK)]);
      const gen = Generator.create({ weights: modelDir, latentTopK: TOP_K, maxPositions: manifest.model.maxPositions });
      let expected: GenerationResult[];
      try {
        ({ results: expected } = await gen.generate({
          prompts,
          mode: { kind: 'latent', topK: TOP_K, maxLatent: MAX_LATENT, latentEndIds: endThink, latentEndId: endThink[0] as number },
          sampling: { kind: 'greedy' },
          maxNewTokens: MAX_NEW,
          stopIds: manifest.stopIds,
          batchSize: 2,
        }));
      } finally {
        gen.release();
      }

      const server = await serveFolder(site);
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('console', (msg) => {
          if (msg.type() === 'error') errors.push(`console: ${msg.text()}`);
        });
        page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
        page.setDefaultTimeout(300_000);
        await page.goto(`${server.url}?ep=wasm`, { waitUntil: 'load' });
        const ready = await page.evaluate(() => (globalThis as unknown as { __latentWeb: LatentWebApi }).__latentWeb.ready);
        expect(ready.ep).toBe('wasm');
        const got = await page.evaluate(
          (problems) => (globalThis as unknown as { __latentWeb: LatentWebApi }).__latentWeb.generate(problems, { animate: false }),
          PROBLEMS,
        );
        expect(got).toHaveLength(PROBLEMS.length);
        got.forEach((g: PageResult, i) => {
          const e = expected[i] as GenerationResult;
          const at = `problem ${i}`;
          expect(g.promptIds, at).toEqual(prompts[i]);
          expect([g.latentCount, g.latentStop], at).toEqual([e.latentCount, e.latentStop]);
          e.latentTopK.forEach((s, t) => {
            const w = g.latentTopK[t];
            expect(tieGroups(w?.ids ?? [], w?.probs ?? []), `${at}, latent step ${t}`).toEqual(tieGroups(s.ids, s.probs));
            expect(w?.probs, `${at}, latent step ${t}`).toBeAllclose(s.probs, PROBS);
          });
          expect([g.outputIds, g.finishReason, g.stopId], at).toEqual([e.outputIds, e.finishReason, e.stopId]);
          expect(g.answer, at).toBe(tok.decode(e.outputIds));
        });
        // The greedy path had no near-tie (else the runtimes could legitimately part ways).
        for (const e of expected)
          for (const s of e.latentTopK) expect(Math.log((s.probs[0] as number) / (s.probs[1] as number))).toBeGreaterThan(TIE_LOGIT_GAP);
        expect(expected.reduce((n, e) => n + e.latentCount + e.outputIds.length, 0)).toBeGreaterThan(PROBLEMS.length * 2);

        // The animated view: the last problem's superposition columns, one per latent step.
        const cells = await page.locator('#steps svg.superposition rect[data-p]').count();
        expect(cells).toBe((expected[PROBLEMS.length - 1] as GenerationResult).latentCount * TOP_K);
        mkdirSync(outDir, { recursive: true });
        await page.screenshot({ path: join(outDir, `web-${vocab.replace(' ', '-')}.png`), fullPage: true });
        expect(errors).toEqual([]);
      } finally {
        await browser.close();
        await server.close();
      }
    },
  );
});
