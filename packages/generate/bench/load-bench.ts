// Host cost of loading a 16-bit generation engine from an HF checkpoint folder: time and the process's peak
// resident memory, reading each weight straight into the engine's dtype (the Generator's own path for a
// checkpoint folder) or through a float32 copy of the whole model first (what it did before session 9).
// Usage (from packages/generate):
//   node --conditions=@latent-sft/source --import tsx bench/load-bench.ts CHECKPOINT_DIR direct16|float32-copy \
//     [--dtype float16|bfloat16] [--device cpu|cuda]
// Prints one "BENCH {...}" line; run each way in its own process (the peak is per process).
import { parseArgs } from 'node:util';
import { loadCheckpoint } from '@latent-sft/models';
import { Generator } from '../src/index.js';

const { values: a, positionals } = parseArgs({
  allowPositionals: true,
  options: { dtype: { type: 'string', default: 'float16' }, device: { type: 'string', default: 'cpu' } },
});
const [dir, how] = positionals as [string | undefined, string | undefined];
if (dir === undefined || (how !== 'direct16' && how !== 'float32-copy')) {
  console.error('usage: load-bench CHECKPOINT_DIR direct16|float32-copy [--dtype float16|bfloat16] [--device cpu|cuda]');
  process.exit(2);
}
if (a.dtype !== 'float16' && a.dtype !== 'bfloat16') {
  console.error(`load-bench: --dtype must be float16 or bfloat16, got '${a.dtype}'`);
  process.exit(2);
}
const dtype = a.dtype;
const device = a.device === 'cuda' ? ({ kind: 'cuda', deviceId: 0 } as const) : ({ kind: 'cpu' } as const);
const t0 = performance.now();
const g =
  how === 'float32-copy'
    ? (() => {
        const ck = loadCheckpoint(dir);
        return Generator.create({ config: ck.config, weights: ck.readAll(), dtype, device, candidates: 16 });
      })()
    : Generator.create({ weights: dir, dtype, device, candidates: 16 });
const loadS = (performance.now() - t0) / 1e3;
g.release();
const peakMiB = process.resourceUsage().maxRSS / 1024;
process.stdout.write(
  `BENCH ${JSON.stringify({ bench: 'generator-load', how, dtype, device: device.kind, checkpoint: dir, load_s: loadS, peak_rss_mib: peakMiB })}\n`,
);
