/**
 * NumPy's legacy `RandomState` (numpy/random/mtrand.pyx, _legacy_seeding, src/mt19937, distributions.c) for the
 * draws scikit-learn's k-means makes from it: `np.random.seed(s)` / `RandomState(s)` with an integer seed,
 * `random_sample` / `uniform(0, 1)` doubles and `randint(low, high)` (the masked-rejection bounded integers).
 *
 * - Seeding: an integer seed 0 <= s < 2^32 is MT19937's `init_genrand(s)` (`mt19937_seed`); the state position is
 *   624, so the first draw regenerates the whole state.
 * - A double: two 32-bit outputs a, b -> `((a >> 5) * 2^26 + (b >> 6)) / 2^53`; `uniform(low, high)` is
 *   `low + (high - low) * double` (exactly the double for [0, 1)).
 * - `randint(low, high)` (high exclusive): rng = high - 1 - low; 0 gives low without a draw; rng < 2^32 - 1 draws
 *   32-bit outputs masked with the smallest 2^k - 1 >= rng until one is <= rng; rng = 2^32 - 1 takes one output as
 *   is; larger ranges draw 64-bit values (first output in the high word) masked the same way.
 *
 * Checked against NumPy (RandomState(0).random_sample(3), randint sequences for seeds 1, 42, 7) in the tests, and
 * against the k-means draws recorded in the cia-tiny golden.
 */
import { invalidParameterError } from '../../../errors.js';

const N = 624;
const M = 397;
const UPPER = 0x80000000;
const LOWER = 0x7fffffff;
const MATRIX_A = 0x9908b0df;
const TWO_32 = 2 ** 32;

/** The smallest 2^k - 1 >= value (value < 2^53). */
function maskFor(value: number): number {
  let mask = 1;
  while (mask < value) mask = mask * 2 + 1;
  return mask;
}

export class LegacyRandomState {
  private readonly key = new Uint32Array(N);
  private pos = N;
  /** 32-bit outputs drawn since seeding (for traces and tests). */
  drawn = 0;

  constructor(seed: number) {
    this.seed(seed);
  }

  /** `np.random.seed(seed)` for an integer seed: MT19937 init_genrand. */
  seed(seed: number): void {
    if (!Number.isInteger(seed) || seed < 0 || seed >= TWO_32) throw invalidParameterError('seed', 'integer between 0 and 2**32 - 1', seed);
    let s = seed >>> 0;
    for (let i = 0; i < N; i++) {
      this.key[i] = s;
      s = (Math.imul(1812433253, (s ^ (s >>> 30)) >>> 0) + i + 1) >>> 0;
    }
    this.pos = N;
    this.drawn = 0;
  }

  private regenerate(): void {
    const k = this.key;
    for (let i = 0; i < N; i++) {
      const y = ((k[i]! & UPPER) | (k[(i + 1) % N]! & LOWER)) >>> 0;
      k[i] = (k[(i + M) % N]! ^ (y >>> 1) ^ (y & 1 ? MATRIX_A : 0)) >>> 0;
    }
    this.pos = 0;
  }

  /** One tempered 32-bit output. */
  nextUint32(): number {
    if (this.pos === N) this.regenerate();
    let y = this.key[this.pos++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    this.drawn++;
    return y >>> 0;
  }

  /** One double in [0, 1) with 53 random bits (`random_sample`). */
  nextDouble(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** `random_sample(size)`. */
  randomSample(size: number): Float64Array {
    return Float64Array.from({ length: size }, () => this.nextDouble());
  }

  /** `uniform(low, high, size)`: low + (high - low) * double. */
  uniform(size: number, low = 0, high = 1): Float64Array {
    const range = high - low;
    return Float64Array.from({ length: size }, () => low + range * this.nextDouble());
  }

  /** `randint(low, high)` (high exclusive), one value; with one argument `randint(high)` draws from [0, high). */
  randint(lowOrHigh: number, high?: number): number {
    const low = high === undefined ? 0 : lowOrHigh;
    const hi = high === undefined ? lowOrHigh : high;
    if (!Number.isSafeInteger(low) || !Number.isSafeInteger(hi) || hi <= low) {
      throw invalidParameterError('randint(low, high)', 'safe integers with low < high', [low, hi]);
    }
    const rng = hi - 1 - low;
    if (rng === 0) return low;
    if (rng === TWO_32 - 1) return low + this.nextUint32();
    const mask = maskFor(rng);
    if (rng < TWO_32) {
      for (;;) {
        const v = (this.nextUint32() & mask) >>> 0;
        if (v <= rng) return low + v;
      }
    }
    // 64-bit: (first << 32) | second, masked; exact in doubles for ranges below 2^53.
    const maskHigh = Math.floor(mask / TWO_32);
    for (;;) {
      const hiWord = (this.nextUint32() & maskHigh) >>> 0;
      const loWord = this.nextUint32();
      const v = hiWord * TWO_32 + loWord;
      if (v <= rng) return low + v;
    }
  }
}
