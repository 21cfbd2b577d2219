/** The fit modes of image loading (src/io/image.ts), in a module of their own so option validation needs no image library. */

/** How an image is brought to the working size: 'stretch' = the official loading; 'cover' / 'contain' keep the aspect. */
export type Fit = 'stretch' | 'cover' | 'contain';
export const FITS: readonly Fit[] = Object.freeze(['stretch', 'cover', 'contain'] as const);
/** Aspect-preserving: non-square photos are not squashed; square inputs still get the official pixels. */
export const DEFAULT_FIT: Fit = 'cover';
