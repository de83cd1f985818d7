// @latent-sft/web: a trained latent reasoner as a static web page — the decoder step graph as a plain
// ONNX model for onnxruntime-web, the export folder (tokenizer, latent spec, manifest, bundled page).
export { WEB_STEP, buildWebStepGraph, quantizeRows } from './step-graph.js';
export type { WebFeed, WebStepOptions, WebWeightDtype, WeightReader } from './step-graph.js';
export { PROBLEM_SLOT, WEB_MANIFEST_FILE } from './manifest.js';
export type { WebManifest } from './manifest.js';
export { ORT_WASM, bundlePage, exportWeb, writeWebFolder } from './export.js';
export type { ExportWebOptions, ExportWebResult, WebFolderOptions } from './export.js';
export type { LatentWebApi, PageResult } from './page/api.js';
export type { WebGeneration } from './page/engine.js';
