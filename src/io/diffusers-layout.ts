/**
 * A Stable Diffusion model folder in the diffusers layout (save_pretrained / Hugging Face snapshot):
 *
 *   model_index.json                      (optional here)
 *   unet/         config.json  diffusion_pytorch_model.safetensors
 *   vae/          config.json  diffusion_pytorch_model.safetensors
 *   text_encoder/ config.json  model.safetensors
 *   tokenizer/    vocab.json   merges.txt   tokenizer_config.json   special_tokens_map.json
 *   scheduler/    scheduler_config.json
 *
 * Only paths are resolved here (and model_index.json parsed); configs and weights are read by their owners.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FileError } from '../errors.js';

export type DiffusersComponent = 'unet' | 'vae' | 'text_encoder' | 'tokenizer' | 'scheduler';

export interface DiffusersLayout {
  root: string;
  /** model_index.json when the folder has one (parse it with config/model-index.ts). */
  modelIndexPath: string | undefined;
  unet: string;
  vae: string;
  textEncoder: string;
  tokenizer: string;
  scheduler: string;
}

const ALL_COMPONENTS: readonly DiffusersComponent[] = ['unet', 'vae', 'text_encoder', 'tokenizer', 'scheduler'];

/** What each component folder must hold (besides weights, which findWeights looks for). */
const EXPECTED: Readonly<Record<DiffusersComponent, { what: string; files: readonly string[] }>> = {
  unet: { what: 'the UNet2DConditionModel config.json and weights', files: ['config.json'] },
  vae: { what: 'the AutoencoderKL config.json and weights', files: ['config.json'] },
  text_encoder: { what: 'the CLIPTextModel config.json and weights', files: ['config.json'] },
  tokenizer: { what: 'the CLIPTokenizer files vocab.json, merges.txt and tokenizer_config.json', files: ['vocab.json', 'merges.txt', 'tokenizer_config.json'] },
  scheduler: { what: 'scheduler_config.json', files: ['scheduler_config.json'] },
};

const LAYOUT_HINT =
  'a diffusers model folder has unet/, vae/, text_encoder/, tokenizer/ and scheduler/ (as written by save_pretrained or downloaded from the Hugging Face Hub)';

function isDirectory(path: string): boolean {
  return existsSync(path) && statSync(path).isDirectory();
}

/** Component folder paths of a diffusers model folder; `required` components (default: all) must be complete. */
export function resolveDiffusersLayout(root: string, required: readonly DiffusersComponent[] = ALL_COMPONENTS): DiffusersLayout {
  const dir = resolve(root);
  if (!existsSync(dir)) throw new FileError(`${dir}: model folder not found`, { hint: LAYOUT_HINT });
  if (!statSync(dir).isDirectory()) throw new FileError(`${dir}: expected a model folder, found a file`, { hint: LAYOUT_HINT });
  for (const component of required) {
    const folder = join(dir, component);
    if (!isDirectory(folder)) {
      throw new FileError(`${folder}: component folder '${component}' not found (expected ${EXPECTED[component].what})`, { hint: LAYOUT_HINT });
    }
    for (const file of EXPECTED[component].files) {
      if (!existsSync(join(folder, file))) {
        throw new FileError(`${join(folder, file)}: file not found (component '${component}' needs ${EXPECTED[component].what})`, { hint: LAYOUT_HINT });
      }
    }
  }
  const indexPath = join(dir, 'model_index.json');
  return {
    root: dir,
    modelIndexPath: existsSync(indexPath) ? indexPath : undefined,
    unet: join(dir, 'unet'),
    vae: join(dir, 'vae'),
    textEncoder: join(dir, 'text_encoder'),
    tokenizer: join(dir, 'tokenizer'),
    scheduler: join(dir, 'scheduler'),
  };
}

/** Weight file names in order of preference: plain, sharded, then the fp16 variants (diffusers naming). */
export const WEIGHT_FILE_CANDIDATES: readonly string[] = [
  'diffusion_pytorch_model.safetensors',
  'model.safetensors',
  'diffusion_pytorch_model.safetensors.index.json',
  'model.safetensors.index.json',
  'diffusion_pytorch_model.fp16.safetensors',
  'model.fp16.safetensors',
  'diffusion_pytorch_model.safetensors.index.fp16.json',
  'model.safetensors.index.fp16.json',
];

const PICKLE_WEIGHTS = /\.(bin|ckpt|pt|pth)$/;

/** The weights file of one component folder (a .safetensors file or a sharded .safetensors.index.json). */
export function findWeights(componentDir: string): string {
  const dir = resolve(componentDir);
  if (!isDirectory(dir)) throw new FileError(`${dir}: component folder not found (expected safetensors weights in it)`, { hint: LAYOUT_HINT });
  for (const name of WEIGHT_FILE_CANDIDATES) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  const pickles = readdirSync(dir)
    .filter((f) => PICKLE_WEIGHTS.test(f))
    .sort();
  if (pickles.length > 0) {
    throw new FileError(`${dir}: only PyTorch pickle weights found (${pickles.join(', ')}); eye4eye requires safetensors weights`, {
      hint: 'convert them, e.g. load the model with diffusers and call save_pretrained(folder, safe_serialization=True)',
    });
  }
  throw new FileError(`${dir}: no weights found; expected one of ${WEIGHT_FILE_CANDIDATES.join(', ')}`, { hint: LAYOUT_HINT });
}
