/**
 * The pictures a transfer writes, the same for the CLI, the web page's server and batches: result.png, grid.png
 * (structure | appearance | result), the masks used, correspondence.png (Eye-for-an-eye's matches).
 */
import { correspondencePng, gridPng, maskToPng, tensorToPng } from '../io/image.js';
import type { TransferOutput } from './pipeline.js';

export interface ResultFile {
  name: string;
  data: Buffer;
}

export async function resultFiles(result: TransferOutput, options: { workingInputs?: boolean } = {}): Promise<ResultFile[]> {
  const files: ResultFile[] = [
    { name: 'result.png', data: result.png },
    {
      name: 'grid.png',
      data: await gridPng([
        { image: result.structure, label: 'structure' },
        { image: result.appearance, label: 'appearance' },
        { image: result.image, label: 'result' },
      ]),
    },
  ];
  // The inputs as the model saw them (working size), e.g. for the page's correspondence view.
  if (options.workingInputs === true)
    files.push({ name: 'structure.png', data: await tensorToPng(result.structure) }, { name: 'appearance.png', data: await tensorToPng(result.appearance) });
  if (result.structureMask !== undefined) files.push({ name: 'mask-structure.png', data: await maskToPng(result.structureMask) });
  if (result.appearanceMask !== undefined) files.push({ name: 'mask-appearance.png', data: await maskToPng(result.appearanceMask) });
  if (result.matches !== undefined) files.push({ name: 'correspondence.png', data: await correspondencePng(result.image, result.appearance, result.matches) });
  return files;
}
