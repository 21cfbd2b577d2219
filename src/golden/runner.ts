/**
 * Runs the tensor groups of a golden case through our implementation and compares every output tensor.
 *
 * A group is the first dot-separated part of a tensor name (`unet_e4e_match.out` -> `unet_e4e_match`). Every
 * tensor io.json does not mark as `input` or `diagnostic` is compared, with io.json's recommended tolerance for it
 * (longest prefix; rtol 1e-3 / atol 1e-4 only where none applies). A group may add diagnostic checks of its own
 * (ctx.check); a failing one fails the group without discarding its tensors.
 * A group we cannot run (no implementation, or an error) is a failure, never a skip.
 */
import { existsSync } from 'node:fs';
import { GoldenError } from '../errors.js';
import type { Tensor } from '../tensor/tensor.js';
import { compareTensors, type CompareResult } from './compare.js';
import { closeEngine, openEngine, type EngineOptions, type GoldenEngine } from './engine.js';
import { closeSamEngine, openSamEngine, type SamGoldenEngine } from './sam-engine.js';
import { groupOf, loadGoldenCase, type GoldenCase } from './golden-case.js';
import { GROUP_RUNNERS } from './groups/index.js';

export { groupOf } from './golden-case.js';

/**
 * What a group implementation gets: the case, and the case's model opened lazily (through the engine adapter); a
 * case without model/ (e.g. `images`) runs the groups that need none, the others fail saying model/ is missing.
 */
export interface GoldenContext {
  readonly golden: GoldenCase;
  model(): GoldenEngine;
  /** The case's model/ opened lazily as a SAM-HQ model (cases of kind samhq). */
  sam(): SamGoldenEngine;
  /** The names of the case's tensors in one group, outputs only. */
  outputs(group: string): string[];
  /** A line for the report (e.g. where a natural-argmax run first differs). */
  note(message: string): void;
  /** A diagnostic comparison of the group beyond its output tensors (reported as its own line; a failure fails the group). */
  check(result: CompareResult): void;
  /** One output could not be computed (e.g. an input io.json documents is missing): its line says why; the rest go on. */
  fail(output: string, error: unknown): void;
  /** False when the run was asked to skip the diagnostic checks (each group says so in a note). */
  readonly checks: boolean;
}

/** Computes the tensors of one group, keyed by their golden names. */
export type GroupRunner = (ctx: GoldenContext, group: string) => Promise<Record<string, Tensor>>;

export interface GroupReport {
  group: string;
  comparisons: CompareResult[];
  /** The group's own diagnostic checks (ctx.check). */
  checks: CompareResult[];
  /** Set when the group could not run. */
  error?: string;
  notes: string[];
  seconds: number;
  ok: boolean;
}

export interface GoldenReport {
  caseDir: string;
  groups: GroupReport[];
  computed: Record<string, Tensor>;
  ok: boolean;
}

export interface GoldenRunOptions extends EngineOptions {
  /** Group names or prefixes (`unet_e4e` selects unet_e4e, unet_e4e_match, ...). */
  only?: readonly string[];
  onGroup?: (report: GroupReport) => void;
  /** Run the diagnostic checks (the transfer's natural-argmax rerun); default true. */
  checks?: boolean;
}

function isCompared(golden: GoldenCase, name: string): boolean {
  const role = golden.tensors[name]?.role;
  return role !== 'input' && role !== 'diagnostic';
}

/** The groups of a case that have tensors to compare, in io.json order. */
export function caseGroups(golden: GoldenCase): string[] {
  const groups: string[] = [];
  for (const name of Object.keys(golden.tensors)) {
    const g = groupOf(name);
    if (isCompared(golden, name) && !groups.includes(g)) groups.push(g);
  }
  return groups;
}

export function selectGroups(all: readonly string[], only: readonly string[] | undefined): string[] {
  if (only === undefined || only.length === 0) return [...all];
  const matches = (g: string, sel: string): boolean => g === sel || g.startsWith(`${sel}_`);
  for (const sel of only) {
    if (!all.some((g) => matches(g, sel))) {
      throw new GoldenError(`--only: no group '${sel}' in this case (groups: ${all.join(', ')})`);
    }
  }
  return all.filter((g) => only.some((sel) => matches(g, sel)));
}

/** The runner of a group: exact name first, then the longest registered prefix (`nonsquare` ...). */
function runnerFor(group: string): GroupRunner | undefined {
  return GROUP_RUNNERS[group];
}

export async function runGolden(caseDir: string, options: GoldenRunOptions = {}): Promise<GoldenReport> {
  const golden = loadGoldenCase(caseDir);
  let engine: GoldenEngine | undefined;
  let samEngine: SamGoldenEngine | undefined;
  let notes: string[] = [];
  let checks: CompareResult[] = [];
  let failures = new Map<string, string>();
  const ctx: GoldenContext = {
    golden,
    checks: options.checks ?? true,
    model: () => {
      if (engine === undefined && !existsSync(golden.modelDir)) {
        throw new GoldenError(`${golden.dir}: golden case has no model/, which this group needs`, {
          hint: 'a golden case holds io.json, io.safetensors and model/',
        });
      }
      return (engine ??= openEngine(golden.modelDir, options));
    },
    sam: () => (samEngine ??= openSamEngine(golden.modelDir, options)),
    outputs: (group) => Object.keys(golden.tensors).filter((n) => groupOf(n) === group && isCompared(golden, n)),
    note: (message) => {
      notes.push(message);
    },
    check: (result) => {
      checks.push(result);
    },
    fail: (output, error) => {
      const message = error instanceof Error ? error.message : String(error);
      failures.set(output, message.startsWith(`${output}: `) ? message.slice(output.length + 2) : message);
    },
  };
  const groups = selectGroups(caseGroups(golden), options.only);
  const reports: GroupReport[] = [];
  const computed: Record<string, Tensor> = {};
  try {
    for (const group of groups) {
      const started = performance.now();
      notes = [];
      checks = [];
      failures = new Map();
      const report: GroupReport = { group, comparisons: [], checks, seconds: 0, ok: false, notes };
      const runner = runnerFor(group);
      try {
        if (runner === undefined) throw new GoldenError(`no implementation for group '${group}' yet`);
        const tensors = await runner(ctx, group);
        Object.assign(computed, tensors);
        for (const name of ctx.outputs(group)) {
          const ours = tensors[name];
          const expected = golden.get(name);
          const tol = golden.tolerance(name);
          if (ours === undefined) {
            const why = failures.has(name) ? `not computed: ${failures.get(name)}` : 'not computed by our implementation';
            report.comparisons.push({
              label: name,
              ok: false,
              maxAbs: NaN,
              maxRel: NaN,
              worstIndex: [],
              mismatches: 0,
              count: 0,
              pairs: [],
              shapeError: why,
              ...tol,
            });
          } else {
            report.comparisons.push(compareTensors(ours, expected, { ...tol, label: name }));
          }
        }
        report.ok = report.comparisons.length > 0 && report.comparisons.every((c) => c.ok) && report.checks.every((c) => c.ok);
      } catch (err) {
        report.error = err instanceof Error ? err.message : String(err);
      }
      report.seconds = (performance.now() - started) / 1000;
      reports.push(report);
      options.onGroup?.(report);
    }
  } finally {
    if (engine !== undefined) await closeEngine(engine);
    if (samEngine !== undefined) await closeSamEngine(samEngine);
    golden.close();
  }
  return { caseDir, groups: reports, computed, ok: reports.length > 0 && reports.every((r) => r.ok) };
}
