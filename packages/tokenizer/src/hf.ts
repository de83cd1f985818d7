// The only module of this package that imports @huggingface/transformers. transformers.js keeps its
// settings in one process-wide mutable object, `env`; loading a tokenizer here sets, every time,
// local-only values on it (no Hub, no network, no file cache):
//   env.allowRemoteModels = false   never fetch from huggingface.co
//   env.allowLocalModels  = true    read the folder we pass
//   env.useFSCache = false, env.useBrowserCache = false   never copy files into transformers.js' cache
// Because `env` is global, any other code in the same process that uses transformers.js sees these
// values too (and could change them between our calls: we set them again before each load).
// Folders are passed as absolute paths, so transformers.js never joins them onto env.localModelPath.
// transformers.js memoises file metadata per path: load a changed folder under a new path.
import { resolve } from 'node:path';
import { AutoTokenizer, env, type PreTrainedTokenizer } from '@huggingface/transformers';

export type { PreTrainedTokenizer };

/** Puts transformers.js in local-only mode (see the file header); returns the settings applied. */
export function configureLocalOnly(): { allowRemoteModels: boolean; allowLocalModels: boolean } {
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
  env.useFSCache = false;
  env.useBrowserCache = false;
  return { allowRemoteModels: env.allowRemoteModels, allowLocalModels: env.allowLocalModels };
}

/** `AutoTokenizer.from_pretrained(dir)` in local-only mode (tokenizer.json + tokenizer_config.json). */
export async function autoTokenizerFromDir(dir: string): Promise<PreTrainedTokenizer> {
  configureLocalOnly();
  return AutoTokenizer.from_pretrained(resolve(dir), { local_files_only: true });
}
