// The CLI layer of `export-web`: flags from one zod schema through @latent-sft/config (strict flags,
// --config file, --print-config, --log-format); the export itself is @latent-sft/web's exportWeb.
// Prints one JSON line {out, files}.
import { buildCli, defineCommand, defineConfig } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import { exportWeb } from '@latent-sft/web';
import { z } from 'zod';

const schema = defineConfig(
  z.object({
    model: z.string().describe('HF checkpoint folder (config.json + model.safetensors; latent.json; tokenizer files unless --tokenizer)'),
    out: z.string().describe('output folder (serve it over HTTP and open index.html)'),
    tokenizer: z.string().optional().describe('folder with tokenizer.json + tokenizer_config.json (default: --model)'),
    dtype: z
      .enum(['float32', 'float16', 'int8'])
      .default('float32')
      .describe('storage dtype of the weights (int8: weight-only, per output row; compute is float32)'),
    'max-latent': z.number().int().nonnegative().default(128).describe("the page's latent steps cap"),
    'max-new-tokens': z.number().int().positive().default(64).describe("the page's answer tokens cap"),
    'max-positions': z.number().int().positive().optional().describe('RoPE table length (default min(max_position_embeddings, 4096))'),
  }),
);

/** Parses `argv` (without node and script) and exports; the result line goes to `write`. */
export async function runCli(argv: readonly string[], write: (text: string) => void, logger: Logger): Promise<void> {
  await buildCli({
    name: 'export-web',
    out: write,
    logger,
    commands: [
      defineCommand({
        command: '$0',
        describe: 'write a static folder (ONNX step graph, tokenizer, latent.json, page) that runs latent reasoning in a browser',
        schema,
        handler: async (c) => {
          const r = await exportWeb(
            {
              model: c.model,
              out: c.out,
              ...(c.tokenizer !== undefined ? { tokenizer: c.tokenizer } : {}),
              weightDtype: c.dtype,
              maxLatent: c['max-latent'],
              maxNewTokens: c['max-new-tokens'],
              ...(c['max-positions'] !== undefined ? { maxPositions: c['max-positions'] } : {}),
            },
            logger,
          );
          write(`${JSON.stringify({ out: r.out, files: r.files })}\n`);
        },
      }),
    ],
  }).parseAsync([...argv]);
}
