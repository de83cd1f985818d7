// @latent-sft/cuda-install: the pieces of `pnpm cuda:install` (src/main.ts is the command).
export {
  DLOPENED_LIBS,
  GPU_PACKAGE,
  PROVIDER_DIR_IN_TARBALL,
  PROVIDER_LIBS,
  USAGE,
  checkLibraries,
  extractProviders,
  fetchProviderPackage,
  findProviderDir,
  formatLibraryReport,
  installProviders,
  libraryStatus,
  locateLibrary,
  parseArgs,
  parseLdconfig,
  parseLdd,
  placeProviders,
} from './install.js';
export type { CliOptions, LddEntry, LibraryStatus, PlacedFile } from './install.js';
