/**
 * `eye4eye compare`: both methods side by side from the same inversions (TransferPipeline.compare). A command of its
 * own rather than `transfer --method a,b`: its outputs differ (one comparison picture and a folder per method), and
 * `transfer` stays one method, one result. The flags are transfer's (options-table.ts) without --method; each method
 * gets the options it reads (METHOD_ONLY_OPTIONS: --feat-range for Eye-for-an-eye, --swap-guidance for Cross-Image
 * Attention, ...; --guidance is Eye-for-an-eye's, Cross-Image Attention runs without classifier-free guidance), and
 * its own defaults fill the rest.
 *
 * Writes to --out: compare.png (structure | appearance | Eye-for-an-eye | Cross-Image Attention) and one folder per
 * method (eye-for-an-eye/, cia/) with what `transfer` writes (result.png, grid.png, ..., run.json).
 * The output folder follows transfer's rules (run-folder.ts): new or empty, or an earlier compare run replaced with
 * --overwrite; each method's folder is an eye4eye run of its own, and the top run.json lists them.
 * Exit codes as `transfer`: 0 done; 2 usage; 130 interrupted; 1 any other E4EError.
 */
import { rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AbortError, E4EError, InvalidParameterError } from '../errors.js';
import { METHOD_NAMES } from '../methods/index.js';
import { DEFAULT_MODEL_ID } from '../pipeline/model-source.js';
import { optionsForMethod, validateTransferOptions } from '../pipeline/options.js';
import { loadPipeline, prepareTransferInputs, type CompareOptionsInput } from '../pipeline/pipeline.js';
import { flagHelp, flagOf, optionsFromFlags, REQUIRED_FLAGS, UsageError } from './options-table.js';
import { DEFAULT_OUT_DIR, downloadPrinter, parseCommandLine, progressPrinter, resultFiles, runRecord, type CommandIo } from './transfer-command.js';
import { expectedOutputBytes, RunFolder } from './run-folder.js';

export const COMPARE_PICTURE = 'compare.png';

export const COMPARE_HELP = `  eye4eye compare --structure FILE --appearance FILE --domain NAME [options]
    Eye-for-an-eye and Cross-Image Attention from the same inversions. Writes ${COMPARE_PICTURE}
    (structure | appearance | Eye-for-an-eye | Cross-Image Attention) and a folder per method
    (${METHOD_NAMES.join('/, ')}/) with result.png, grid.png and run.json. Options as for transfer, without
    --method: each method takes the options it reads (--guidance is Eye-for-an-eye's) and its own defaults.`;

function checkOptions(values: Readonly<Record<string, string | boolean | string[] | undefined>>): CompareOptionsInput {
  if (values['method'] !== undefined) throw new UsageError('--method: compare runs every method (use transfer for one)');
  for (const flag of REQUIRED_FLAGS) {
    if (values[flag] === undefined || values[flag] === '') throw new UsageError(`missing required option --${flag}`);
  }
  const options = optionsFromFlags(values) as CompareOptionsInput;
  try {
    // validated the way compare will run them, so that a bad value is a usage error before the model loads
    for (const method of METHOD_NAMES) validateTransferOptions(optionsForMethod(options, method));
  } catch (e) {
    if (!(e instanceof InvalidParameterError)) throw e;
    const flag = e.parameter === undefined ? undefined : flagOf(e.parameter);
    throw new UsageError(flag === undefined ? e.message : `${flag}: ${e.message}`);
  }
  return options;
}

async function run(argv: readonly string[], io: CommandIo): Promise<number> {
  const { values } = parseCommandLine(argv);
  if (values['help'] === true) {
    io.out(`Usage:\n${COMPARE_HELP}\n${flagHelp()}\n`);
    return 0;
  }
  const options = checkOptions(values);
  const structure = String(values['structure']);
  const appearance = String(values['appearance']);
  const outDir = String(values['out'] ?? DEFAULT_OUT_DIR);
  const modelArg = String(values['model'] ?? DEFAULT_MODEL_ID);
  const given = { featRange: values['feat-range'] !== undefined, adainRange: values['adain-range'] !== undefined };

  // Before any model is opened: the inputs, then the output folder and one sub-folder per method (run-folder.ts).
  const prepared = await prepareTransferInputs({ structure, appearance }, validateTransferOptions(optionsForMethod(options, METHOD_NAMES[0]!)));
  const masks = (options.structureMask === undefined ? 0 : 1) + (options.appearanceMask === undefined ? 0 : 1);
  const claim = { overwrite: values['overwrite'] === true, ...(io.freeBytes === undefined ? {} : { freeBytes: io.freeBytes }) };
  const top = RunFolder.claim(outDir, {
    ...claim,
    expectedBytes: (METHOD_NAMES.length + 1) * expectedOutputBytes(prepared.size.width, prepared.size.height, masks),
  });
  const folders: RunFolder[] = [];
  try {
    for (const method of METHOD_NAMES) folders.push(RunFolder.claim(join(outDir, method), claim));
  } catch (e) {
    for (const f of folders.reverse()) f.release();
    top.release();
    throw e;
  }
  const releaseAll = (): void => {
    for (const f of [...folders].reverse()) f.release();
    top.release();
  };

  const loadOptions: Parameters<typeof loadPipeline>[1] = {
    onStatus: (s) => io.err(`${io.isTTY === true ? '\r\x1b[2K' : ''}eye4eye: ${s}\n`),
    onDownload: downloadPrinter(io, modelArg),
  };
  if (options.device !== undefined) loadOptions.device = options.device;
  if (options.precision !== undefined) loadOptions.precision = options.precision;
  if (options.cacheDir !== undefined) loadOptions.cacheDir = options.cacheDir;
  if (io.env !== undefined) loadOptions.env = io.env;
  const controller = new AbortController();
  const onSigint = (): void => controller.abort();
  process.once('SIGINT', onSigint);
  let pipeline: Awaited<ReturnType<typeof loadPipeline>> | undefined;
  const written: string[] = [];
  try {
    pipeline = await loadPipeline(modelArg, loadOptions);
    const compared = await pipeline.compare({ structure, appearance }, options, { onProgress: progressPrinter(io), signal: controller.signal });
    if (controller.signal.aborted) throw new AbortError('compare aborted');
    const runs: Record<string, unknown> = {};
    for (const [i, method] of METHOD_NAMES.entries()) {
      const result = compared.results[method];
      const dir = join(outDir, method);
      const files = await resultFiles(result);
      const record = runRecord(
        { structure, appearance, outDir: dir, argv, given },
        result.metadata.options,
        result,
        [...files.map((f) => f.name), 'run.json'],
        'compare',
      );
      runs[method] = `${method}/run.json`;
      files.push({ name: 'run.json', data: Buffer.from(`${JSON.stringify(record, null, 2)}\n`) });
      written.push(...folders[i]!.write(files));
    }
    const record = {
      tool: 'eye4eye',
      command: 'compare',
      createdAt: new Date().toISOString(),
      commandLine: { argv: ['eye4eye', 'compare', ...argv], cwd: process.cwd() },
      runs,
      outDir: resolve(outDir),
      outputs: [COMPARE_PICTURE, ...METHOD_NAMES, 'run.json'],
    };
    top.write([
      { name: COMPARE_PICTURE, data: compared.png },
      { name: 'run.json', data: Buffer.from(`${JSON.stringify(record, null, 2)}\n`) },
    ]);
    io.out(`${resolve(outDir, COMPARE_PICTURE)}\n`);
    return 0;
  } catch (e) {
    for (const p of written) rmSync(p, { force: true });
    releaseAll();
    throw e;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await pipeline?.dispose();
  }
}

/** Run `eye4eye compare ARGS`; returns the exit code. */
export async function runCompareCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  try {
    return await run(argv, io);
  } catch (e) {
    if (e instanceof AbortError) {
      io.err(`${io.isTTY === true ? '\r\x1b[2K' : ''}eye4eye compare: interrupted (Ctrl-C); nothing was written\n`);
      return 130;
    }
    if (e instanceof UsageError) {
      io.err(`eye4eye compare: ${e.message}\n  (see eye4eye compare --help)\n`);
      return 2;
    }
    if (e instanceof E4EError) {
      io.err(`eye4eye compare: ${e.name} [${e.code}]: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
