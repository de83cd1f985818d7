// The exported page (bundled by exportWeb with esbuild into app.js): loads web.json, latent.json, the
// tokenizer files and the ONNX step graph from its own folder (nothing from the network), tokenises a
// problem in the Latent-SFT prompt format (@huggingface/tokenizers, the tokenizer core of
// transformers.js), runs the latent loop (engine.ts) on onnxruntime-web — WebGPU where the browser has
// it, WASM otherwise; `?ep=wasm|webgpu` forces one — and animates the superposition of each latent
// step (the eval report's heatmap), then shows the answer.
// For tests and scripts: `window.__latentWeb` = { ready, generate(problems) } (see LatentWebApi).
import { superpositionSvg } from '@latent-sft/eval';
import { parseLatentSpec } from '@latent-sft/latent';
import { subsetIds } from '@latent-sft/tokenizer';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-web';
import { PROBLEM_SLOT, WEB_MANIFEST_FILE, type WebManifest } from '../manifest.js';
import type { LatentWebApi, PageResult } from './api.js';
import { generateLatent } from './engine.js';

const $ = <T extends HTMLElement>(id: string): T => {
  const e = document.getElementById(id);
  if (e === null) throw new Error(`the page has no #${id}`);
  return e as T;
};

async function fetchJson(name: string): Promise<unknown> {
  const r = await fetch(name);
  if (!r.ok) throw new Error(`${name}: HTTP ${r.status}`);
  return r.json();
}

function status(text: string): void {
  $('status').textContent = text;
}

async function load(): Promise<{
  m: WebManifest;
  tok: Tokenizer;
  session: ort.InferenceSession;
  ep: string;
  loadMs: number;
  base: (b: number) => string | undefined;
}> {
  const t0 = performance.now();
  const m = (await fetchJson(WEB_MANIFEST_FILE)) as WebManifest;
  if (m.format !== 1) throw new Error(`${WEB_MANIFEST_FILE}: format ${String(m.format)} is not 1 (export again)`);
  const { spec } = parseLatentSpec(await fetchJson('latent.json'), 'latent.json');
  if (spec.topK !== m.latent.spec.topK) throw new Error(`latent.json topK ${spec.topK} differs from ${WEB_MANIFEST_FILE}'s ${m.latent.spec.topK}`);
  const [tj, tc] = await Promise.all([fetchJson('tokenizer.json'), fetchJson('tokenizer_config.json')]);
  const tok = new Tokenizer(tj as object, tc as object);
  const vocab = new Map<number, string>();
  const model = (tj as { model?: { vocab?: Record<string, number> } }).model;
  for (const [t, id] of Object.entries(model?.vocab ?? {})) vocab.set(id, t);
  for (const a of (tj as { added_tokens?: Array<{ id: number; content: string }> }).added_tokens ?? []) vocab.set(a.id, a.content);

  // ?ep=wasm|webgpu forces one; otherwise WebGPU where the browser has it, with ORT falling back to WASM
  // (also when no GPU adapter is found).
  const wanted = new URLSearchParams(location.search).get('ep');
  if (wanted !== null && wanted !== 'wasm' && wanted !== 'webgpu') throw new Error(`?ep=${wanted}: expected wasm or webgpu`);
  const providers = wanted !== null ? [wanted] : 'gpu' in navigator ? ['webgpu', 'wasm'] : ['wasm'];
  const ep = providers.join(' → ');
  ort.env.wasm.wasmPaths = { wasm: new URL(m.ortWasm, location.href).href }; // the glue code is in app.js
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency) : 1;
  status(`loading ${m.model.file} (${ep})…`);
  const session = await ort.InferenceSession.create(m.model.file, {
    executionProviders: providers,
    // 16/8-bit weights are widened per use (step-graph.ts); ORT's constant folding would widen them all at load.
    graphOptimizationLevel: m.model.weightDtype === 'float32' ? 'all' : 'disabled',
    ...(m.model.externalData !== null ? { externalData: [{ path: m.model.externalData, data: m.model.externalData }] } : {}),
  });
  return { m, tok, session, ep, loadMs: performance.now() - t0, base: (b) => vocab.get(b) };
}

function start(): LatentWebApi {
  const loaded = load();
  let busy: Promise<unknown> = Promise.resolve();
  const api: LatentWebApi = {
    ready: loaded.then((l) => {
      status(`ready: ${l.ep}, ${l.m.model.layers} layers, loaded in ${(l.loadMs / 1000).toFixed(1)} s`);
      ($('run') as HTMLButtonElement).disabled = false;
      return { ep: l.ep, threads: ort.env.wasm.numThreads ?? 1, loadMs: l.loadMs };
    }),
    generate(problems, opts = {}) {
      const run = busy.then(async () => {
        const { m, tok, session, base } = await loaded;
        const fromBase = m.subset === null ? null : new Map(m.subset.map((b, i) => [b, i]));
        const encode = (text: string): number[] => {
          const ids = tok.encode(text, { add_special_tokens: false }).ids;
          return fromBase === null ? ids : subsetIds(ids, fromBase, base, (t) => tok.token_to_id(t));
        };
        const decode = (ids: readonly number[]): string =>
          tok.decode(m.subset === null ? [...ids] : ids.map((id) => m.subset?.[id] as number), { skip_special_tokens: false });
        const out: PageResult[] = [];
        for (const problem of problems) {
          if (problem.includes(m.prompt.endThink)) throw new Error(`the problem contains '${m.prompt.endThink}', the latent end marker`);
          const promptIds = [...encode(m.prompt.template.replace(PROBLEM_SLOT, problem)), ...encode(m.prompt.think)];
          const view = $('steps');
          view.innerHTML = '';
          $('answer').textContent = '';
          const steps: Array<{ tokens: string[]; probs: number[] }> = [];
          const r = await generateLatent(ort, session, m, promptIds, {
            maxLatent: opts.maxLatent ?? m.maxLatent,
            maxNewTokens: opts.maxNewTokens ?? m.maxNewTokens,
            onLatent: async (s, i) => {
              steps.push({ tokens: s.ids.map((id) => decode([id])), probs: s.probs });
              view.innerHTML = superpositionSvg({ title: `latent steps (${i + 1})`, steps, maxSteps: steps.length });
              const cells = [...view.querySelectorAll('g.cell')];
              for (const c of cells.slice(cells.length - s.ids.length)) c.classList.add('fresh'); // the newest column fades in
              if (opts.animate !== false) await new Promise((res) => setTimeout(res, 60));
            },
          });
          const answer = decode(r.outputIds);
          $('answer').textContent = answer;
          status(
            `${r.latentCount} latent steps (${r.latentStop ?? '–'}), ${r.outputIds.length} answer tokens, ${r.steps} steps in ${((r.prefillMs + r.decodeMs) / 1000).toFixed(2)} s`,
          );
          out.push({ ...r, problem, promptIds, answer, latentTokens: steps.map((s) => s.tokens) });
        }
        return out;
      });
      busy = run.catch(() => undefined);
      return run;
    },
  };
  (window as unknown as { __latentWeb: LatentWebApi }).__latentWeb = api;
  $('form').addEventListener('submit', (e) => {
    e.preventDefault();
    api.generate([($('problem') as HTMLTextAreaElement).value]).catch((err: unknown) => status(`error: ${(err as Error).message}`));
  });
  api.ready.catch((err: unknown) => status(`error: ${(err as Error).message}`));
  return api;
}

// onnxruntime-web's WASM threads load this same bundle in workers (cross-origin isolated pages): only the page starts the app.
if (typeof document !== 'undefined') start();
