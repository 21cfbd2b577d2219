/** Typed, frozen, validated model configs (diffusers 0.19.3 defaults). */
export { loadJsonConfig } from './config-reader.js';
export * from './unet-config.js';
export * from './vae-config.js';
export * from './clip-config.js';
export * from './scheduler-config.js';
export * from './tokenizer-config.js';
export * from './model-index.js';
