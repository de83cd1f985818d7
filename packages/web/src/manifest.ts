// web.json: what the exported page needs to know besides the model and the tokenizer files, written by
// exportWeb (Node) and read by the page (browser). Pure data and checks, no Node or DOM imports.
import type { LatentSpec } from '@latent-sft/latent';
import type { WebFeed, WebWeightDtype } from './step-graph.js';

/** The manifest file name in an export folder. */
export const WEB_MANIFEST_FILE = 'web.json';
/** Marks where the problem text goes in `prompt.template`. */
export const PROBLEM_SLOT = '\u0000problem\u0000';

/** The contents of web.json. */
export interface WebManifest {
  format: 1;
  model: {
    /** The ONNX file (the web step graph) and its external weights file, or null when inline. */
    file: string;
    externalData: string | null;
    weightDtype: WebWeightDtype;
    layers: number;
    kvHeads: number;
    headDim: number;
    hiddenSize: number;
    vocabSize: number;
    /** Positions are limited to [0, maxPositions). */
    maxPositions: number;
  };
  latent: {
    spec: LatentSpec;
    feed: WebFeed;
    /** The `</think>` ids fed after the latent phase; the first is the latent-end signal. */
    endThinkIds: number[];
  };
  prompt: {
    /** The family's prompt with PROBLEM_SLOT where the problem goes (rendered by @latent-sft/tokenizer). */
    template: string;
    /** `<think>`, tokenised on its own and appended. */
    think: string;
    endThink: string;
  };
  /** Stop ids of the answer, and Latent-SFT's pad id (fills the id slot of a fed latent). */
  stopIds: number[];
  padId: number;
  /** The vocabulary subset (our id → base tokenizer id), or null for the full vocabulary. */
  subset: number[] | null;
  /** Defaults of the page. */
  maxLatent: number;
  maxNewTokens: number;
  /** The onnxruntime-web WASM binary copied into the folder. */
  ortWasm: string;
}
