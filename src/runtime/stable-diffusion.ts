/**
 * A Stable Diffusion model folder (diffusers layout) opened for inference: configs parsed once, the tokenizer,
 * and ONNX sessions built through the graph cache on first use (text encoder, VAE encoder/decoder, UNet variants).
 */
import { join } from 'node:path';
import { loadClipTextConfig, loadSchedulerConfig, loadTokenizerConfig, loadUNetConfig, loadVaeConfig } from '../config/index.js';
import type { ClipTextConfig, SchedulerConfig, TokenizerConfig, UNetConfig, VaeConfig } from '../config/index.js';
import { findWeights, resolveDiffusersLayout, type DiffusersLayout } from '../io/diffusers-layout.js';
import { openTensorSource, type TensorSource } from '../io/safetensors.js';
import { ModelBuildError } from '../errors.js';
import { ClipTokenizer } from '../models/clip/clip-tokenizer.js';
import { buildClipTextModel } from '../models/clip/clip-text-model.js';
import { buildVaeDecoder, buildVaeEncoder } from '../models/vae/autoencoder-kl.js';
import { WeightSet } from '../onnx/weight-scope.js';
import { buildUNet } from '../models/unet/unet-2d-condition.js';
import { officialFreeU } from '../models/unet/freeu.js';
import type { ProcessorPlan } from '../models/unet/attention-processor.js';
import { buildTarget, type BuildTarget, type Precision } from '../onnx/target.js';
import { ModelCache, type BuiltGraph } from './model-cache.js';
import { UNetRunner, type UNetGraphInfo } from './unet-runner.js';
import { Session, type SessionOptions } from './session.js';
import { tensorFromJson, tensorToJson, type TensorJson } from './tensor-json.js';
import type { Tensor } from '../tensor/tensor.js';

export interface ModelOptions extends SessionOptions {
  /** Graph cache folder (default: the platform cache, or E4E_CACHE_DIR). */
  cacheDir?: string;
  /** Called when a graph is built or loaded (for progress displays). */
  onStatus?: (message: string) => void;
  /** Precision of the graphs (default fp32): fp16 keeps normalisations, softmax, the timestep embedding and the method's matching in float32. */
  precision?: Precision;
}

/** Which UNet graph: FreeU on or off, and the attention processors of a method (none = stock attention). */
export interface UNetVariant {
  freeu: boolean;
  processors?:
    | {
        /** Names the graph (e.g. `e4e`): part of the cache entry's name. */
        readonly name: string;
        /** Everything the plan's graph depends on (JSON): part of the cache key and the session table's key. */
        readonly key: unknown;
        readonly plan: ProcessorPlan;
      }
    | undefined;
}

/** What a graph cache entry keeps besides the graph: the nodes that must run on the CPU, and the builder's own meta. */
interface EntryMeta {
  cpuNodes: string[];
  graph: unknown;
}

/** The UNet graph info as kept in the cache entry. */
interface UNetMeta {
  sites: UNetGraphInfo['sites'];
  processed: UNetGraphInfo['processed'];
  neutralFeeds: Record<string, TensorJson>;
}

export interface ComponentWeights {
  /** The weights file (or shard index) of the component. */
  path: string;
  source: TensorSource;
  /** Every file the graph will read (shards included). */
  files: string[];
  /** How errors name the weights (e.g. `unet/diffusion_pytorch_model.safetensors`). */
  description: string;
}

function openComponentWeights(root: string, componentDir: string): ComponentWeights {
  const path = findWeights(componentDir);
  const source = openTensorSource(path);
  const files = [...new Set(source.names().map((n) => source.info(n).file))];
  const description = path.startsWith(root) ? path.slice(root.length).replace(/^[/\\]/, '') : path;
  return { path, source, files, description };
}

export class StableDiffusionModel {
  readonly layout: DiffusersLayout;
  readonly unetConfig: UNetConfig;
  readonly vaeConfig: VaeConfig;
  readonly textConfig: ClipTextConfig;
  readonly tokenizerConfig: TokenizerConfig;
  readonly schedulerConfig: SchedulerConfig;
  readonly tokenizer: ClipTokenizer;
  readonly cache: ModelCache;
  /** What the UNet is built for: the session's execution provider and the precision. */
  readonly target: BuildTarget;
  /** The text encoder and the VAE stay float32 (run once or twice per transfer; fp16 would buy little there). */
  readonly fp32Target: BuildTarget;
  private readonly sessions = new Map<string, Promise<{ session: Session; meta: unknown }>>();
  private readonly weights = new Map<string, ComponentWeights>();

  private constructor(
    readonly root: string,
    readonly options: ModelOptions,
  ) {
    this.layout = resolveDiffusersLayout(root);
    this.unetConfig = loadUNetConfig(join(this.layout.unet, 'config.json'));
    this.vaeConfig = loadVaeConfig(join(this.layout.vae, 'config.json'));
    this.textConfig = loadClipTextConfig(join(this.layout.textEncoder, 'config.json'));
    this.tokenizerConfig = loadTokenizerConfig(this.layout.tokenizer);
    this.schedulerConfig = loadSchedulerConfig(join(this.layout.scheduler, 'scheduler_config.json'));
    const t = this.tokenizerConfig;
    this.tokenizer = ClipTokenizer.fromFiles(t.vocabPath, t.mergesPath, {
      bosToken: t.bosToken,
      eosToken: t.eosToken,
      padToken: t.padToken,
      unkToken: t.unkToken,
      modelMaxLength: t.modelMaxLength,
    });
    this.cache = new ModelCache(options.cacheDir);
    this.target = buildTarget(options.device ?? 'cpu', options.precision ?? 'fp32');
    this.fp32Target = buildTarget(options.device ?? 'cpu', 'fp32');
  }

  /** Open a model folder; nothing is built until a component is used. */
  static open(root: string, options: ModelOptions = {}): StableDiffusionModel {
    return new StableDiffusionModel(root, options);
  }

  componentWeights(component: 'unet' | 'vae' | 'text_encoder'): ComponentWeights {
    let w = this.weights.get(component);
    if (w === undefined) {
      const dir = component === 'unet' ? this.layout.unet : component === 'vae' ? this.layout.vae : this.layout.textEncoder;
      w = openComponentWeights(this.root, dir);
      this.weights.set(component, w);
    }
    return w;
  }

  /** A session for a graph (built, or taken from the cache, once per process) and the build's meta. */
  session(name: string, component: 'unet' | 'vae' | 'text_encoder', config: unknown, build: (weights: WeightSet) => BuiltGraph): Promise<Session> {
    return this.sessionWithMeta(name, component, config, build).then((s) => s.session);
  }

  private sessionWithMeta(
    name: string,
    component: 'unet' | 'vae' | 'text_encoder',
    config: unknown,
    build: (weights: WeightSet) => BuiltGraph,
    target: BuildTarget = this.fp32Target,
  ): Promise<{ session: Session; meta: unknown }> {
    const sessionKey = `${name}:${JSON.stringify({ config, target })}`;
    let pending = this.sessions.get(sessionKey);
    if (pending === undefined) {
      pending = (async () => {
        const w = this.componentWeights(component);
        const entry = this.cache.obtain({
          name,
          // The build target (execution provider, precision) is part of every key: graphs differ per target.
          config: { config, target },
          weightFiles: w.files,
          build: () => {
            this.options.onStatus?.(`building ${name} graph`);
            const built = build(WeightSet.fromSource(w.source, w.description));
            const meta: EntryMeta = { cpuNodes: built.graph.cpuNodeNames, graph: built.meta ?? null };
            return { graph: built.graph, meta };
          },
        });
        const stored = entry.meta as EntryMeta | undefined;
        if (stored === undefined || !Array.isArray(stored.cpuNodes))
          throw new ModelBuildError(`graph cache entry of ${name} has no node placement (rebuild with an empty cache folder)`);
        this.options.onStatus?.(`loading ${name} (${entry.built ? `built in ${entry.buildSeconds.toFixed(1)} s` : 'cached'})`);
        const sessionOptions: SessionOptions & { name: string } = { name };
        for (const key of ['device', 'threads', 'memoryArena', 'optimization', 'logSeverity'] as const) {
          if (this.options[key] !== undefined) (sessionOptions as unknown as Record<string, unknown>)[key] = this.options[key];
        }
        sessionOptions.cpuNodes = stored.cpuNodes;
        return { session: await Session.create(entry.modelPath, sessionOptions), meta: stored.graph };
      })();
      pending.catch(() => this.sessions.delete(sessionKey));
      this.sessions.set(sessionKey, pending);
    }
    return pending;
  }

  /** CLIP ids [n, 77] int64 for prompts. */
  tokenize(prompts: readonly string[]): Tensor<'int64'> {
    const { ids, dims } = this.tokenizer.encodeBatch([...prompts]);
    return { dtype: 'int64', dims, data: ids };
  }

  /** last_hidden_state [n, 77, C] of the prompts. */
  async encodeText(prompts: readonly string[]): Promise<Tensor<'float32'>> {
    const session = await this.session('text_encoder', 'text_encoder', this.textConfig, (w) => ({
      graph: buildClipTextModel(w, this.textConfig, this.fp32Target),
    }));
    const out = await session.run({ input_ids: this.tokenize(prompts) });
    return out['last_hidden_state'] as Tensor<'float32'>;
  }

  /** Image [B, 3, H, W] in [-1, 1] -> scaled latent mean [B, 4, H/8, W/8]. */
  async encodeImage(image: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const session = await this.session('vae_encoder', 'vae', this.vaeConfig, (w) => ({ graph: buildVaeEncoder(w, this.vaeConfig, this.fp32Target) }));
    return (await session.run({ sample: image }))['latent'] as Tensor<'float32'>;
  }

  /** Scaled latent [B, 4, h, w] -> raw decoded image [B, 3, 8h, 8w] (not clamped). */
  async decodeLatent(latent: Tensor<'float32'>): Promise<Tensor<'float32'>> {
    const session = await this.session('vae_decoder', 'vae', this.vaeConfig, (w) => ({ graph: buildVaeDecoder(w, this.vaeConfig, this.fp32Target) }));
    return (await session.run({ latent }))['image'] as Tensor<'float32'>;
  }

  /** The UNet graph of a variant (built or taken from the cache on first use). */
  async unet(variant: UNetVariant): Promise<UNetRunner> {
    const config = this.unetConfig;
    const freeu = variant.freeu ? officialFreeU(config) : null;
    const processors = variant.processors;
    const name = `unet${variant.freeu ? '_freeu' : ''}${processors === undefined ? '' : `_${processors.name}`}`;
    const { session, meta } = await this.sessionWithMeta(
      name,
      'unet',
      { config, freeu, processors: processors?.key ?? null },
      (w) => {
        const built = buildUNet(w, config, { freeu, processors: processors?.plan, target: this.target });
        const unetMeta: UNetMeta = {
          sites: built.sites,
          processed: built.processed,
          neutralFeeds: Object.fromEntries(built.processorInputs.map((io) => [io.name, tensorToJson(io.neutral)])),
        };
        return { graph: built.graph, meta: unetMeta };
      },
      this.target,
    );
    const info = meta as UNetMeta | undefined;
    if (info === undefined || !Array.isArray(info.sites))
      throw new ModelBuildError(`graph cache entry of ${name} has no attention sites (rebuild with an empty cache folder)`);
    return new UNetRunner(session, {
      sites: info.sites,
      processed: info.processed,
      neutralFeeds: Object.fromEntries(Object.entries(info.neutralFeeds).map(([n, t]) => [n, tensorFromJson(t)])),
    });
  }

  /** Names of the graphs whose sessions are open (or opening). */
  get openSessions(): string[] {
    return [...this.sessions.keys()].map((k) => k.slice(0, k.indexOf(':')));
  }

  /**
   * Release the sessions of graphs whose name starts with one of `names` (e.g. 'vae_encoder', 'text_encoder'): their
   * memory goes back now; a later call builds the session again from the graph cache.
   */
  async release(...names: readonly string[]): Promise<void> {
    for (const [key, pending] of [...this.sessions]) {
      if (!names.some((n) => key.startsWith(`${n}:`))) continue;
      this.sessions.delete(key);
      try {
        await (await pending).session.dispose();
      } catch {
        // a session that failed to start has nothing to release
      }
    }
  }

  async dispose(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of sessions) {
      try {
        await (await s).session.dispose();
      } catch {
        // a session that failed to start has nothing to release
      }
    }
    for (const w of this.weights.values()) w.source.close();
    this.weights.clear();
    this.cache.dispose();
  }
}
