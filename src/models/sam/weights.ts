/**
 * SAM-HQ weights and config from either distribution, always under the Hugging Face SamHQModel names (canonical):
 *   - a transformers folder (config.json + model.safetensors, e.g. syscv-community/sam-hq-vit-large), or its
 *     model.safetensors next to config.json;
 *   - an official SysCV/sam-hq checkpoint sam_hq_vit_{b,l,h}.pth, read weights-only (io/torch-checkpoint.ts), its
 *     names mapped to HF names (official-names.ts) and its config taken from a config.json next to it or else
 *     matched to the official ViT-B/L/H variant its shapes show.
 * Either way the config is checked against every weight's shape before anything is built.
 */
import { createHash } from 'node:crypto';
import { ConfigError, WeightMissingError } from '../../errors.js';
import { loadJsonConfig } from '../../config/config-reader.js';
import { openTensorSource, ShardedSafetensors, type TensorInfo, type TensorSource } from '../../io/safetensors.js';
import { resolveSamLayout, safetensorsContentKey } from '../../io/sam-layout.js';
import { TorchCheckpoint } from '../../io/torch-checkpoint.js';
import type { Tensor } from '../../tensor/tensor.js';
import { checkSamHQWeights, parseSamHQConfig, SAM_HQ_VARIANTS, samHQVariantConfig, samHQWeightShapes, type SamHQConfig, type SamHQVariant } from './config.js';
import { OFFICIAL_DROPPED_NAMES, officialToHfNames } from './official-names.js';

export interface SamWeights {
  readonly source: TensorSource;
  readonly config: SamHQConfig;
  readonly description: string;
  /** sha256 of the weights' content key, their format and the config: stable for the graph cache. */
  readonly identity: string;
  readonly format: 'huggingface' | 'pytorch';
}

/** A TensorSource under other names: `names` maps each new name to the underlying one. */
class RenamedSource implements TensorSource {
  constructor(
    private readonly inner: TensorSource,
    private readonly names_: ReadonlyMap<string, string>,
    readonly description: string,
  ) {}

  names(): string[] {
    return [...this.names_.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  }

  has(name: string): boolean {
    return this.names_.has(name);
  }

  private inner_(name: string): string {
    const original = this.names_.get(name);
    if (original === undefined) throw new WeightMissingError(`${this.description}: no tensor named '${name}'`);
    return original;
  }

  info(name: string): TensorInfo {
    return { ...this.inner.info(this.inner_(name)), name };
  }

  read(name: string, options?: { widen?: boolean }): Tensor {
    return this.inner.read(this.inner_(name), options);
  }

  close(): void {
    this.inner.close();
  }
}

/** The official variant whose ViT width and depth the weights have, checked in full against its config. */
function inferVariant(source: TensorSource, file: string): { config: SamHQConfig; variant: SamHQVariant } {
  const patch = 'vision_encoder.patch_embed.projection.weight';
  if (!source.has(patch)) throw new WeightMissingError(`${source.description}: missing weight ${patch}, so the ViT size cannot be told`);
  const hidden = source.info(patch).dims[0];
  const depth = new Set(source.names().flatMap((n) => /^vision_encoder\.layers\.(\d+)\./.exec(n)?.[1] ?? [])).size;
  for (const variant of SAM_HQ_VARIANTS) {
    const config = samHQVariantConfig(variant);
    if (config.vision.hiddenSize === hidden && config.vision.numHiddenLayers === depth) return { config, variant };
  }
  throw new ConfigError(
    `${file}: matches no official SAM-HQ variant (ViT-B 768 x 12, ViT-L 1024 x 24, ViT-H 1280 x 32): its image encoder is ${hidden} wide and ${depth} blocks deep`,
    { hint: "a .pth holds no config: put the model's config.json (a transformers SamHQConfig) next to it" },
  );
}

function identityOf(format: string, contentKey: string, config: SamHQConfig): string {
  return createHash('sha256').update(JSON.stringify({ format, contentKey, config })).digest('hex');
}

function openPytorch(file: string, configPath: string | undefined): SamWeights {
  const checkpoint = TorchCheckpoint.open(file);
  try {
    const official = checkpoint.names().filter((n) => !OFFICIAL_DROPPED_NAMES.includes(n));
    const toHf = officialToHfNames(official, checkpoint.path);
    const source = new RenamedSource(
      checkpoint,
      new Map([...toHf].map(([o, h]) => [h, o])),
      `${checkpoint.description} (official names as Hugging Face names)`,
    );
    let config: SamHQConfig;
    let what: string;
    if (configPath !== undefined) {
      config = parseSamHQConfig(loadJsonConfig(configPath), configPath);
      what = `config ${configPath}`;
    } else {
      const inferred = inferVariant(source, checkpoint.path);
      config = inferred.config;
      what = `official ${inferred.variant} config`;
    }
    checkSamHQWeights(config, source, `${checkpoint.path} (with the ${what})`);
    return {
      source,
      config,
      format: 'pytorch',
      description: `SAM-HQ official checkpoint ${checkpoint.path} (${what})`,
      identity: identityOf('pytorch', checkpoint.contentKey, config),
    };
  } catch (error) {
    checkpoint.close();
    throw error;
  }
}

function openHuggingFace(file: string, configPath: string): SamWeights {
  const config = parseSamHQConfig(loadJsonConfig(configPath), configPath);
  const source = openTensorSource(file);
  try {
    checkSamHQWeights(config, source, `${file} (with the config ${configPath})`);
    const files = source instanceof ShardedSafetensors ? source.shards.map((s) => s.path) : [file];
    return {
      source,
      config,
      format: 'huggingface',
      description: `SAM-HQ Hugging Face weights ${file} (config ${configPath})`,
      identity: identityOf('huggingface', files.map(safetensorsContentKey).join(','), config),
    };
  } catch (error) {
    source.close();
    throw error;
  }
}

/**
 * Open SAM-HQ weights from a Hugging Face SamHQModel folder, a model.safetensors next to a config.json, or an
 * official sam_hq_vit_{b,l,h}.pth (config.json next to it optional). The caller closes `source`.
 */
export function openSamWeights(path: string): SamWeights {
  const layout = resolveSamLayout(path);
  if (layout.format === 'pytorch') return openPytorch(layout.weights, layout.config);
  return openHuggingFace(layout.weights, layout.config!);
}

export { samHQWeightShapes };
