/**
 * Writing built graphs.
 *
 * External data: ONNX external data and safetensors share one idea, raw little-endian tensors at byte offsets.
 * So a weight that comes from a .safetensors file is not copied: its TensorProto points at the tensor's bytes
 * inside that file. ONNX Runtime resolves external-data locations relative to the model's folder and refuses
 * paths that leave it, symbolic links included (it checks the resolved path), so the model folder gets a hard link
 * to each weights file: no copy, no extra disk. Where a hard link is impossible (another file system) the file is
 * cloned (copy-on-write where the file system can) or copied once. Small tensors and constants made by the builder are written to `<model>.onnx.data`.
 * Nothing here is limited to 2 GB: only the protobuf itself must stay below 2 GB, and it holds no weights.
 */
import { closeSync, constants, copyFileSync, existsSync, linkSync, openSync, readSync, realpathSync, writeFileSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { ModelBuildError } from '../errors.js';
import { encodeModel, OnnxDataType, type TensorProtoJs } from './proto.js';
import type { GraphBuilder, Initializer } from './graph-builder.js';

/** Tensors up to this size stay inside the protobuf. */
const INLINE_LIMIT_BYTES = 256;
/** Offsets in the .data file are aligned so that ORT may memory-map them. */
const DATA_ALIGNMENT = 64;

function external(init: Initializer, location: string, offset: number, length: number): TensorProtoJs {
  return {
    name: init.name,
    dims: [...init.dims],
    dataType: OnnxDataType[init.dtype],
    dataLocation: 1,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  };
}

function inline(init: Initializer, bytes: Uint8Array): TensorProtoJs {
  return { name: init.name, dims: [...init.dims], dataType: OnnxDataType[init.dtype], rawData: bytes };
}

function readFileBytes(file: string, offset: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const fd = openSync(file, 'r');
  try {
    let done = 0;
    while (done < length) {
      const n = readSync(fd, out, done, length - done, offset + done);
      if (n === 0) throw new ModelBuildError(`${file}: unexpected end of file reading ${length} bytes at offset ${offset}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return out;
}

/** The whole model in one buffer, every weight inlined (small test graphs; the result must stay < 2 GB). */
export function modelToBytes(builder: GraphBuilder): Uint8Array {
  return encodeModel(
    builder.toModelProto((init) =>
      inline(init, init.data.kind === 'embedded' ? init.data.bytes : readFileBytes(init.data.file, init.data.offset, init.data.length)),
    ),
  );
}

/**
 * Save `${dir}/${name}.onnx` (+ `${name}.onnx.data`, + links to weight files). `dir` must exist; callers that need
 * atomicity (the model cache) pass a fresh temporary folder and rename it when done.
 */
export function saveModel(builder: GraphBuilder, dir: string, name: string): string {
  const modelPath = join(dir, `${name}.onnx`);
  const dataName = `${name}.onnx.data`;
  const dataPath = join(dir, dataName);
  const links = new Map<string, string>();
  const fd = openSync(dataPath, 'w');
  let position = 0;
  try {
    const proto = builder.toModelProto((init) => {
      if (init.data.kind === 'file') {
        let link = links.get(init.data.file);
        if (link === undefined) {
          link = `${name}.weights.${links.size}.${basename(init.data.file)}`;
          linkOrCopy(init.data.file, join(dir, link));
          links.set(init.data.file, link);
        }
        return external(init, link, init.data.offset, init.data.length);
      }
      const bytes = init.data.bytes;
      if (bytes.byteLength <= INLINE_LIMIT_BYTES) return inline(init, bytes);
      const pad = (DATA_ALIGNMENT - (position % DATA_ALIGNMENT)) % DATA_ALIGNMENT;
      if (pad > 0) {
        writeSync(fd, new Uint8Array(pad));
        position += pad;
      }
      const offset = position;
      writeSync(fd, bytes);
      position += bytes.byteLength;
      return external(init, dataName, offset, bytes.byteLength);
    });
    writeFileSync(modelPath, encodeModel(proto));
  } finally {
    closeSync(fd);
  }
  return modelPath;
}

function linkOrCopy(target: string, linkPath: string): void {
  if (!existsSync(target)) throw new ModelBuildError(`weights file ${target} does not exist`);
  // Hugging Face caches hold symbolic links to blobs: link the blob itself.
  const real = realpathSync(target);
  try {
    linkSync(real, linkPath);
  } catch {
    copyFileSync(real, linkPath, constants.COPYFILE_FICLONE);
  }
}
