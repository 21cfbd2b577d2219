/** `eye4eye golden <case-dir> [--only GROUPS] [--save FILE]`: fidelity against a golden case. */
import { parseArgs } from 'node:util';
import { resolve } from 'node:path';
import { invalidParameterError } from '../errors.js';
import { writeSafetensors } from '../io/safetensors.js';
import { formatCompare } from '../golden/compare.js';
import { runGolden, type GroupReport } from '../golden/runner.js';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../runtime/session.js';
import { PRECISIONS, type Precision } from '../onnx/target.js';

export const GOLDEN_HELP = `  golden <case-dir>     run every tensor group of a golden case (io.json + io.safetensors + model/)
                        through eye4eye and compare each output tensor (max abs / rel error, pass/fail
                        against io.json's recommended tolerances; default rtol 1e-3, atol 1e-4), plus
                        the groups' own checks (the transfer's natural-argmax run, as a 'check' line).
                        Exits 1 if any tensor or check fails or any group cannot run.
    --only GROUPS       comma-separated groups or prefixes (text,scheduler,vae,unet_plain,unet_freeu,unet_e4e,...)
    --save FILE         also write every computed tensor, under its golden name, to a safetensors file
    --device DEV        ${EXECUTION_PROVIDERS.join(' | ')} (default cpu)
    --precision P       ${PRECISIONS.join(' | ')} (default fp32): fp16 builds the UNet in float16 (float32 islands)
    --cache-dir DIR     graph cache folder (default: the platform cache or E4E_CACHE_DIR)
    --no-checks         skip the diagnostic checks (the transfer's natural-argmax rerun, half the transfer group's time)`;

function printGroup(report: GroupReport, out: (s: string) => void): void {
  const status = report.ok ? 'PASS' : 'FAIL';
  out(`[${status}] ${report.group} (${report.seconds.toFixed(1)} s)\n`);
  if (report.error !== undefined) out(`    cannot run: ${report.error.split('\n').join('\n    ')}\n`);
  for (const c of report.comparisons) out(`    ${formatCompare(c).split('\n').join('\n    ')}\n`);
  for (const c of report.checks) out(`    check ${formatCompare(c).split('\n').join('\n    ')}\n`);
  for (const n of report.notes) out(`    note: ${n}\n`);
}

const GOLDEN_OPTIONS = {
  only: { type: 'string' },
  save: { type: 'string' },
  device: { type: 'string' },
  precision: { type: 'string' },
  'cache-dir': { type: 'string' },
  'no-checks': { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** A usage mistake (unknown flag, bad value): one line naming the flag, exit code 2, as `transfer` does. */
function usageError(err: (s: string) => void, message: string): number {
  err(`eye4eye golden: ${message}\n  (see eye4eye golden --help)\n`);
  return 2;
}

export async function runGoldenCommand(args: readonly string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...args], allowPositionals: true, options: GOLDEN_OPTIONS });
  } catch (e) {
    return usageError(err, (e as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help === true) {
    out(`Usage: eye4eye golden <case-dir> [options]\n${GOLDEN_HELP}\n`);
    return 0;
  }
  const [caseDir, ...extra] = positionals;
  if (caseDir === undefined || extra.length > 0) {
    err(`Usage: eye4eye golden <case-dir> [--only GROUPS] [--save FILE]\n`);
    return 2;
  }
  const precision = values.precision ?? 'fp32';
  if (!PRECISIONS.includes(precision as Precision))
    return usageError(err, invalidParameterError('--precision', `one of ${PRECISIONS.join(', ')}`, precision).message);
  const device = values.device ?? 'cpu';
  if (!EXECUTION_PROVIDERS.includes(device as ExecutionProvider)) {
    return usageError(err, invalidParameterError('--device', `one of ${EXECUTION_PROVIDERS.join(', ')}`, device).message);
  }
  const only = values.only
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const report = await runGolden(resolve(caseDir), {
    ...(only === undefined ? {} : { only }),
    device: device as ExecutionProvider,
    precision: precision as Precision,
    ...(values['cache-dir'] === undefined ? {} : { cacheDir: values['cache-dir'] }),
    ...(values['no-checks'] === true ? { checks: false } : {}),
    onGroup: (g) => printGroup(g, out),
  });
  const tensors = report.groups.flatMap((g) => g.comparisons);
  const failedTensors = tensors.filter((c) => !c.ok).length;
  const checks = report.groups.flatMap((g) => g.checks);
  const failedChecks = checks.filter((c) => !c.ok).length;
  const failedGroups = report.groups.filter((g) => !g.ok).map((g) => g.group);
  if (values.save !== undefined) {
    writeSafetensors(resolve(values.save), report.computed, { producer: 'eye4eye golden', case: report.caseDir });
    out(`saved ${Object.keys(report.computed).length} tensors to ${values.save}\n`);
  }
  out(
    `tensors: ${tensors.length - failedTensors} passed, ${failedTensors} failed; ` +
      `checks: ${checks.length - failedChecks} passed, ${failedChecks} failed; groups failing: ${failedGroups.length === 0 ? 'none' : failedGroups.join(', ')}\n`,
  );
  return report.ok ? 0 : 1;
}
