/**
 * Where SAM-HQ weights lie on disk: a Hugging Face SamHQModel folder (config.json + model.safetensors, or a sharded
 * model.safetensors.index.json), a model.safetensors file next to its config.json, or an official PyTorch checkpoint
 * (sam_hq_vit_{b,l,h}.pth), with a config.json next to it when there is one. Also the content keys of weights files.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fstatSync, openSync, readSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { FileError } from '../errors.js';

export interface SamWeightFiles {
  readonly format: 'huggingface' | 'pytorch';
  /** The .safetensors / .safetensors.index.json / .pth file. */
  readonly weights: string;
  /** config.json: always for 'huggingface'; for 'pytorch' only when one lies next to the checkpoint. */
  readonly config: string | undefined;
}

const HF_WEIGHTS = ['model.safetensors', 'model.safetensors.index.json'];

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Resolve a folder or file to the SAM-HQ weights and config it holds (FileError naming what is missing). */
export function resolveSamLayout(path: string): SamWeightFiles {
  const full = resolve(path);
  if (!existsSync(full)) {
    throw new FileError(`${full}: SAM-HQ model not found`, {
      hint: 'pass a Hugging Face SamHQModel folder (config.json + model.safetensors), its model.safetensors, or an official sam_hq_vit_{b,l,h}.pth',
    });
  }
  if (statSync(full).isDirectory()) {
    const weights = HF_WEIGHTS.map((n) => join(full, n)).find(isFile);
    const config = join(full, 'config.json');
    if (weights === undefined || !isFile(config)) {
      const missing = [...(weights === undefined ? ['model.safetensors'] : []), ...(isFile(config) ? [] : ['config.json'])];
      throw new FileError(`${full}: not a SAM-HQ model folder: ${missing.join(' and ')} missing`, {
        hint: 'a Hugging Face SamHQModel folder holds config.json and model.safetensors (e.g. `huggingface-cli download syscv-community/sam-hq-vit-large`); or pass a sam_hq_vit_{b,l,h}.pth file',
      });
    }
    return { format: 'huggingface', weights, config };
  }
  const config = join(dirname(full), 'config.json');
  if (full.endsWith('.safetensors') || full.endsWith('.safetensors.index.json')) {
    if (!isFile(config)) {
      throw new FileError(`${full}: a SAM-HQ safetensors file needs its config.json next to it, and ${config} does not exist`, {
        hint: 'pass the whole Hugging Face model folder, or put its config.json next to the weights',
      });
    }
    return { format: 'huggingface', weights: full, config };
  }
  if (/\.(pth|pt|ckpt|bin)$/.test(full)) return { format: 'pytorch', weights: full, config: isFile(config) ? config : undefined };
  throw new FileError(`${full}: unknown SAM-HQ weights file type '${basename(full)}'`, {
    hint: 'expected a folder, a .safetensors file or an official .pth checkpoint',
  });
}

/**
 * A content key for a safetensors file without reading its tensors: a Hugging Face cache blob is named by the
 * sha256 of its content (then that name is the key); otherwise the header digest with the file's size, mtime,
 * inode and real path (the same facts the graph cache keys on).
 */
export function safetensorsContentKey(file: string): string {
  const real = realpathSync(file);
  if (basename(dirname(real)) === 'blobs' && /^[0-9a-f]{64}$/.test(basename(real))) return `blob:${basename(real)}`;
  const fd = openSync(real, 'r');
  try {
    const st = fstatSync(fd);
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Math.min(Number(len.readBigUInt64LE(0)), Math.max(0, st.size - 8), 100_000_000);
    const header = Buffer.alloc(n);
    readSync(fd, header, 0, n, 8);
    return createHash('sha256').update(header).update(`\n${st.size}\t${st.mtimeMs}\t${st.ino}\t${real}`).digest('hex');
  } finally {
    closeSync(fd);
  }
}
