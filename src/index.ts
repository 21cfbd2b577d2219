/**
 * eye4eye's public library surface. Everything else is internal and may change.
 *
 *   import { loadPipeline } from 'eye4eye';
 *   const pipeline = await loadPipeline('stable-diffusion-v1-5/stable-diffusion-v1-5');
 *   const { png } = await pipeline.transfer({ structure: 'a.png', appearance: 'b.png' }, { domain: 'bird' });
 */
export { loadPipeline, TransferPipeline } from './pipeline/pipeline.js';
export type { LoadPipelineOptions, Phase, ProgressEvent, RunControls, TransferInputs, TransferMetadata, TransferOutput } from './pipeline/pipeline.js';
export { DEFAULT_TRANSFER_OPTIONS, validateTransferOptions, workingSize } from './pipeline/options.js';
export type { Device, Injection, TransferOptions, TransferOptionsInput } from './pipeline/options.js';
export { DEFAULT_MODEL_ID, obtainModelSource, resolveModelSource } from './pipeline/model-source.js';
export { downloadDiffusersModel } from './pipeline/hub-download.js';

export { StableDiffusionModel } from './runtime/stable-diffusion.js';
export type { ModelOptions, UNetVariant } from './runtime/stable-diffusion.js';
export type { UNetCall, UNetGraphInfo, UNetResult } from './runtime/unet-runner.js';
export { tokenMapSize } from './models/unet/attention-processor.js';
export type { AttentionProcessor, AttentionSite, ProcessorPlan } from './models/unet/attention-processor.js';
export { METHODS, METHOD_NAMES } from './methods/index.js';
export type { MethodName } from './methods/index.js';
export type { Correspondence, MethodInputs, MethodOutput, TransferMethod } from './methods/method.js';
export { e4eFeeds, injectionSlots } from './methods/eye-for-an-eye/controls.js';
export type { E4EControls, E4EMode } from './methods/eye-for-an-eye/controls.js';
export { availableProviders, ORT_VERSION } from './runtime/session.js';
export type { ExecutionProvider } from './runtime/session.js';

export { runGolden } from './golden/runner.js';
export type { GoldenReport, GroupReport } from './golden/runner.js';
export { loadGoldenCase } from './golden/golden-case.js';
export { compareTensors, formatCompare } from './golden/compare.js';

export { DEFAULT_FIT, FITS, decodeImage, fitRaster, imageSize, loadImage, loadMask, loadSamInput, rasterToTensor } from './io/image.js';
export type { Fit, ImageSource, LoadOptions, Size } from './io/image.js';
export type { Raster } from './io/resample/raster.js';
export { pilResize } from './io/resample/pil.js';
export { cv2ResizeLinear } from './io/resample/cv2.js';
export { openTensorSource, writeSafetensors } from './io/safetensors.js';
export type { Tensor, DType } from './tensor/tensor.js';
export { VERSION } from './version.js';
export * from './errors.js';
export { SamSegmenter, requireNonEmpty, imageContentKey } from './pipeline/sam-segmenter.js';
export type { SamSegmenterOptions, SegmentPrompt, SegmentResult, SamEmbedding, SamBox, SamPoint } from './pipeline/sam-segmenter.js';
