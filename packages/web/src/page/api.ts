// What the page exposes on window.__latentWeb (for tests and scripts; no DOM types, so Node code may import it).
import type { WebGeneration } from './engine.js';

/** One problem's result as the page exposes it. */
export interface PageResult extends WebGeneration {
  problem: string;
  promptIds: number[];
  answer: string;
  /** Decoded top-k tokens of each latent step. */
  latentTokens: string[][];
}

/** What the page puts on window.__latentWeb. */
export interface LatentWebApi {
  /** Resolves once the session is created: the execution providers asked for, WASM threads and the load time. */
  ready: Promise<{ ep: string; threads: number; loadMs: number }>;
  generate(problems: readonly string[], opts?: { maxLatent?: number; maxNewTokens?: number; animate?: boolean }): Promise<PageResult[]>;
}
