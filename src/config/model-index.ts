/**
 * model_index.json of a diffusers pipeline folder: the pipeline class and, per component, the
 * [library, class] pair (`"unet": ["diffusers", "UNet2DConditionModel"]`; `[null, null]` for absent ones).
 */
import { ConfigReader, deepFreeze, isString, loadJsonConfig, showValue } from './config-reader.js';
import { ConfigError } from '../errors.js';

export interface ModelIndexComponent {
  readonly library: string | null;
  readonly className: string | null;
}

export interface ModelIndex {
  readonly className: string | null;
  readonly diffusersVersion: string | null;
  /** Every [library, class] entry, by component name (keys starting with '_' and plain flags excluded). */
  readonly components: Readonly<Record<string, ModelIndexComponent>>;
}

export function parseModelIndex(json: unknown, path: string): ModelIndex {
  const r = ConfigReader.from(json, path);
  const components: Record<string, ModelIndexComponent> = {};
  for (const [key, value] of Object.entries(r.json)) {
    if (key.startsWith('_') || !Array.isArray(value)) continue;
    if (value.length !== 2 || !value.every((v) => v === null || isString(v))) {
      throw new ConfigError(`${path}: field '${key}' must be a [library, class name] pair, got ${showValue(value)}`);
    }
    components[key] = { library: value[0] as string | null, className: value[1] as string | null };
  }
  return deepFreeze({
    className: r.nullable('_class_name', isString, 'a string', null),
    diffusersVersion: r.nullable('_diffusers_version', isString, 'a string', null),
    components,
  });
}

/** Read and parse `model_index.json`. */
export function loadModelIndex(path: string): ModelIndex {
  return parseModelIndex(loadJsonConfig(path), path);
}
