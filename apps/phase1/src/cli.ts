// The yargs layer of `phase1`: one binary, three commands (encoder | decoder | union = spec §3.6
// steps 1-3), each with its own config schema; the nx targets phase1-encoder / -decoder / -union of
// the `pipeline` project call them. The resolved config is logged and saved beside every checkpoint.
import {
  type PhaseCliIo,
  phase1DecoderConfig,
  phase1EncoderConfig,
  phase1UnionConfig,
  phaseCommand,
  runPhase1Decoder,
  runPhase1Encoder,
  runPhase1Union,
  runPhaseCli,
} from '@latent-sft/pipeline';

/** Parses `argv` (without node and script) and runs the step; the summary goes to `write` as one JSON line. */
export async function runCli(argv: readonly string[], io: PhaseCliIo): Promise<void> {
  await runPhaseCli(
    'phase1',
    [
      phaseCommand({
        command: 'encoder',
        describe: 'step 1: LoRA on the encoder (M0 + <|compress_token|>, embed_tokens included); decoder = M0 frozen',
        schema: phase1EncoderConfig,
        run: runPhase1Encoder,
        trains: true,
      }),
      phaseCommand({
        command: 'decoder',
        describe: 'step 2: merged step-1 encoder frozen; LoRA on the decoder',
        schema: phase1DecoderConfig,
        run: runPhase1Decoder,
        trains: true,
      }),
      phaseCommand({
        command: 'union',
        describe: 'step 3: new LoRAs on the step-1 encoder and the step-2 decoder, trained jointly',
        schema: phase1UnionConfig,
        run: runPhase1Union,
        trains: true,
      }),
    ],
    argv,
    io,
  );
}
