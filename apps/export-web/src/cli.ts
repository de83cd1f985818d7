// The yargs layer of `export-web`: strict options, --help; the export itself is @latent-sft/web's
// exportWeb. Prints one JSON line {out, files}. Usage errors become one-line UserErrors.
import { type Logger, inputError } from '@latent-sft/core';
import { exportWeb } from '@latent-sft/web';
import yargs from 'yargs';

/** Parses `argv` (without node and script) and exports; the result line goes to `write`. */
export async function runCli(argv: readonly string[], write: (text: string) => void, logger: Logger): Promise<void> {
  const a = await yargs([...argv])
    .scriptName('export-web')
    .usage(
      '$0 --model <hf dir> --out <folder>\n\nWrites a static folder (ONNX step graph, tokenizer, latent.json, page) that runs latent reasoning in a browser; serve it over HTTP and open index.html.',
    )
    .option('model', {
      type: 'string',
      demandOption: true,
      describe: 'HF checkpoint folder (config.json + model.safetensors; latent.json; tokenizer files unless --tokenizer)',
    })
    .option('out', { type: 'string', demandOption: true, describe: 'output folder' })
    .option('tokenizer', { type: 'string', describe: 'folder with tokenizer.json + tokenizer_config.json (default: --model)' })
    .option('dtype', {
      choices: ['float32', 'float16', 'int8'] as const,
      default: 'float32' as const,
      describe: 'storage dtype of the weights (int8: weight-only, per output row; compute is float32)',
    })
    .option('max-latent', { type: 'number', default: 128, describe: "the page's latent steps cap" })
    .option('max-new-tokens', { type: 'number', default: 64, describe: "the page's answer tokens cap" })
    .option('max-positions', { type: 'number', describe: 'RoPE table length (default min(max_position_embeddings, 4096))' })
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err !== undefined && err !== null) throw err;
      throw inputError({}, msg.replace(/\s+/g, ' ').trim());
    })
    .parseAsync();
  if (a.help === true) return;
  const r = await exportWeb(
    {
      model: a.model,
      out: a.out,
      ...(a.tokenizer !== undefined ? { tokenizer: a.tokenizer } : {}),
      weightDtype: a.dtype,
      maxLatent: a['max-latent'],
      maxNewTokens: a['max-new-tokens'],
      ...(a['max-positions'] !== undefined ? { maxPositions: a['max-positions'] } : {}),
    },
    logger,
  );
  write(`${JSON.stringify({ out: r.out, files: r.files })}\n`);
}
