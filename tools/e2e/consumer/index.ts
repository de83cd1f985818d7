// A TypeScript consumer of the packed packages: `tsc --noEmit` against the installed types.
import { type Matrix, matrix, softEmbeddingTopK, topKDistribution } from '@latent-sft/latent';
import { type InductionMaskOptions, inductionMask } from '@latent-sft/masks';
import { type Extraction, extractAnswer, renderReportHtml } from '@latent-sft/eval';

const logits: Matrix<Float64Array> = matrix(Float64Array.from([1, 3, 2]), 1, 3);
const W: Matrix<Float64Array> = matrix(Float64Array.from([1, 0, 0, 1, 1, 1]), 3, 2);
const top = topKDistribution(logits, 2);
const emb: Matrix<Float64Array> = softEmbeddingTopK(top.indices, top.probs, W);
const opts: InductionMaskOptions = { compressId: 9 };
const mask: Uint8Array = inductionMask([5, 9], opts);
const found: Extraction = extractAnswer('#### 4');
const html: string = renderReportHtml({ title: 't', summaries: [] });
export const checked = [emb.rows, mask.length, found.answer, html.length] as const;
