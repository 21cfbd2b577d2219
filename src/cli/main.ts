/**
 * The `eye4eye` command line: a thin layer over the library. Returns the process exit code.
 */
import { E4EError } from '../errors.js';
import { BATCH_HELP, runBatchCommand } from './batch-command.js';
import { VERSION } from '../version.js';
import { COMPARE_HELP, runCompareCommand } from './compare-command.js';
import { runGoldenCommand, GOLDEN_HELP } from './golden-command.js';
import { MASK_HELP, runMaskCommand } from './mask-command.js';
import { runSubmitCommand, runWorkerCommand, SUBMIT_HELP, WORKER_HELP } from './queue-commands.js';
import { runServeCommand, SERVE_HELP } from './serve-command.js';
import { runTransferCommand, TRANSFER_HELP } from './transfer-command.js';

const HELP = `eye4eye ${VERSION} - Eye-for-an-eye appearance transfer on Stable Diffusion (ONNX Runtime)

Usage:
  eye4eye transfer --structure FILE --appearance FILE --domain NAME [options]   appearance transfer
  eye4eye mask --image FILE [--box x0,y0,x1,y1] [--point x,y,1|0 ...]            an object mask with SAM-HQ
  eye4eye compare --structure FILE --appearance FILE --domain NAME [options]    both methods side by side
  eye4eye batch FILE [--out DIR] [--retry-failed]          many transfers from a CSV / JSON Lines file, resumable
  eye4eye worker --redis URL [--out DIR]                  run jobs from a Redis queue (BullMQ)
  eye4eye submit --redis URL FILE                         enqueue a batch file and follow it
  eye4eye golden <case-dir> [--only GROUPS] [--save FILE]   compare our implementation with a golden case
  eye4eye serve [--port N] [--host H] [--model ID|DIR]       the local web page and JSON API
  eye4eye --help | -h                                     this help
  eye4eye --version | -v                                  the version

Commands:
${TRANSFER_HELP}

${MASK_HELP}
${COMPARE_HELP}

${BATCH_HELP}

${WORKER_HELP}

${SUBMIT_HELP}

${GOLDEN_HELP}

${SERVE_HELP}
`;

export async function main(
  argv: readonly string[],
  out: (s: string) => void = (s) => process.stdout.write(s),
  err: (s: string) => void = (s) => process.stderr.write(s),
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        out(HELP);
        return command === undefined ? 2 : 0;
      case '--version':
      case '-v':
        out(`${VERSION}\n`);
        return 0;
      case 'transfer':
        return await runTransferCommand(rest, { out, err, isTTY: process.stderr.isTTY === true });
      case 'mask':
        return await runMaskCommand(rest, { out, err });
      case 'compare':
        return await runCompareCommand(rest, { out, err, isTTY: process.stderr.isTTY === true });
      case 'batch':
        return await runBatchCommand(rest, { out, err, isTTY: process.stderr.isTTY === true });
      case 'worker':
        return await runWorkerCommand(rest, { out, err });
      case 'submit':
        return await runSubmitCommand(rest, { out, err });
      case 'serve':
        return await runServeCommand(rest, { out, err });
      case 'golden':
        return await runGoldenCommand(rest, out, err);
      default:
        err(`eye4eye: unknown command '${command}'\n\n${HELP}`);
        return 2;
    }
  } catch (e) {
    if (e instanceof E4EError) {
      err(`eye4eye: ${e.name} [${e.code}]: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}
