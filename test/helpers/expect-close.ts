/** Tensor closeness for tests: the single comparison helper of src/golden/compare.ts. */
export { compareTensors, expectClose, formatCompare, type CompareOptions, type CompareResult } from '../../src/golden/compare.js';
