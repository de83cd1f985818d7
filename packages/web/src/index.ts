// @latent-sft/web: a trained latent reasoner as a static web page — the decoder step graph as a plain
// ONNX model for onnxruntime-web, the export folder (tokenizer, latent spec, manifest, bundled page).
export type { WebFeed, WebWeightDtype, WeightReader } from './step-graph.js';
export { WEB_MANIFEST_FILE } from './manifest.js';
export type { WebManifest } from './manifest.js';
export { bundlePage, exportWeb, writeWebFolder } from './export.js';
export type { ExportWebOptions, ExportWebResult, WebFolderOptions } from './export.js';
export type { LatentWebApi, PageResult } from './page/api.js';
export type { WebGeneration } from './page/engine.js';
