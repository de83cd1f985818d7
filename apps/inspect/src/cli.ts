// The yargs layer of `inspect`: strict options, --help, and each command's result printed as one JSON
// line through `write`. Usage errors become one-line UserErrors (runMain prints them).
import { inputError } from '@latent-sft/core';
import yargs from 'yargs';
import { logitsCommand, tokenizeCommand } from './inspect.js';

/** Parses `argv` (without node and script) and runs the command; output goes to `write`. */
export async function runCli(argv: readonly string[], write: (text: string) => void): Promise<void> {
  await yargs([...argv])
    .scriptName('inspect')
    .usage('$0 <command> [options]')
    .command(
      'logits',
      'print {"logits": [[...], ...]} (fp32, CPU; one row per position) for token ids',
      (y) =>
        y
          .option('model', { type: 'string', demandOption: true, describe: 'HF checkpoint folder (config.json + model.safetensors)' })
          .option('ids', { type: 'string', demandOption: true, describe: 'comma-separated token ids, e.g. 1,15,27' })
          .option('allowConfigFields', {
            type: 'string',
            default: '',
            describe: 'comma-separated config.json fields to load although unknown or unsupported (ignored)',
          }),
      async (a) => write(`${JSON.stringify(await logitsCommand({ model: a.model, ids: a.ids, allowConfigFields: a.allowConfigFields }))}\n`),
    )
    .command(
      'tokenize',
      'print {"ids": [...]} for a text (no special tokens added)',
      (y) =>
        y
          .option('model', { type: 'string', demandOption: true, describe: 'folder with tokenizer.json + tokenizer_config.json' })
          .option('text', { type: 'string', demandOption: true, describe: 'text to tokenize' }),
      async (a) => write(`${JSON.stringify(await tokenizeCommand({ model: a.model, text: a.text }))}\n`),
    )
    .demandCommand(1, 'name a command: logits or tokenize')
    .strict()
    .help()
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => {
      if (err !== undefined && err !== null) throw err;
      throw inputError({}, msg.replace(/\s+/g, ' ').trim());
    })
    .parseAsync();
}
