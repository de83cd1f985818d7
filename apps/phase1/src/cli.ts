// The yargs layer of `phase1`: one binary, three commands (encoder | decoder | union = spec §3.6
// steps 1-3), each with its own config schema; the nx targets phase1-encoder / -decoder / -union of
// the `pipeline` project call them. The resolved config is logged and saved beside every checkpoint.
import { buildCli, defineCommand } from '@latent-sft/config';
import type { Logger } from '@latent-sft/core';
import {
  phase1DecoderConfig, phase1EncoderConfig, phase1UnionConfig, runPhase1Decoder, runPhase1Encoder, runPhase1Union,
} from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs the step; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], o: { logger: Logger; write: (text: string) => void }): Promise<void> {
  const done = (s: unknown) => o.write(`${JSON.stringify(s)}\n`);
  await buildCli({
    name: 'phase1',
    out: o.write,
    commands: [
      defineCommand({
        command: 'encoder', describe: 'step 1: LoRA on the encoder (M0 + <|compress_token|>, embed_tokens included); decoder = M0 frozen',
        schema: phase1EncoderConfig,
        handler: async (config) => { o.logger.info({ config }, 'resolved config'); done(await runPhase1Encoder(config, { logger: o.logger })); },
      }),
      defineCommand({
        command: 'decoder', describe: 'step 2: merged step-1 encoder frozen; LoRA on the decoder',
        schema: phase1DecoderConfig,
        handler: async (config) => { o.logger.info({ config }, 'resolved config'); done(await runPhase1Decoder(config, { logger: o.logger })); },
      }),
      defineCommand({
        command: 'union', describe: 'step 3: new LoRAs on the step-1 encoder and the step-2 decoder, trained jointly',
        schema: phase1UnionConfig,
        handler: async (config) => { o.logger.info({ config }, 'resolved config'); done(await runPhase1Union(config, { logger: o.logger })); },
      }),
    ],
  }).parseAsync([...argv]);
}
