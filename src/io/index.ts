/**
 * io: reading and writing tensors to files. safetensors in both directions (the format checkpoints and
 * fixtures use); PyTorch `.pth`/`.pt` checkpoints for reading, through a restricted unpickler.
 * Integer and boolean tensors keep their exact values.
 */
import { readFileSync, writeFileSync, renameSync } from 'node:fs';
import { Tensor } from '../tensor/tensor.ts';
import { parseSafetensors, serializeSafetensors, SafetensorsError, type RawTensor } from './safetensors.ts';

export { SafetensorsError, parseSafetensors, serializeSafetensors };
export { loadTorch, loadTorchBytes, stateDictFrom, TorchLoadError } from './torch.ts';
export type { TorchValue } from './torch.ts';
export type { RawTensor };

export function tensorsFromSafetensors(bytes: Uint8Array): Record<string, Tensor> {
  const { tensors } = parseSafetensors(bytes);
  const out: Record<string, Tensor> = {};
  for (const [name, raw] of Object.entries(tensors)) out[name] = new Tensor(raw.data, raw.shape, raw.dtype);
  return out;
}

export function safetensorsFromTensors(tensors: Record<string, Tensor>, metadata?: Record<string, string>): Uint8Array {
  const raw: Record<string, RawTensor> = {};
  for (const [name, t] of Object.entries(tensors)) raw[name] = { dtype: t.dtype, shape: [...t.shape], data: t.data };
  return serializeSafetensors(raw, metadata);
}

/** Read every tensor of a .safetensors file. */
export function loadSafetensors(path: string): Record<string, Tensor> {
  return tensorsFromSafetensors(readFileSync(path));
}

/** The `__metadata__` string map of a .safetensors file. */
export function loadSafetensorsMetadata(path: string): Record<string, string> {
  return parseSafetensors(readFileSync(path)).metadata;
}

/** Write a file through a temporary name and a rename, so a crash never leaves half a file behind. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** Write tensors to a .safetensors file, atomically. */
export function saveSafetensors(path: string, tensors: Record<string, Tensor>, metadata?: Record<string, string>): void {
  writeFileAtomic(path, safetensorsFromTensors(tensors, metadata));
}
