// Stand-in for `sharp` in the device bundles: transformers.js imports sharp at module load for its
// image pipelines, which Latent-SFT never uses (tokenizers only), and sharp's native libvips is not
// shipped. Any actual use fails loudly.
export default function sharp() {
  throw new Error('sharp (image processing) is not available in the latent-sft device bundle');
}
