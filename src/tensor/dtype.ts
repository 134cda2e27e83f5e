/**
 * Element types. Floats are what ops compute on (float32 by default, float64 for gradient checks);
 * the integer and boolean types exist so that checkpoints keep their values exactly
 * (`num_batches_tracked` is int64, masks are bool/uint8). Ops that need floats reject them by name.
 */
export type FloatDType = 'float32' | 'float64';
export type DType = FloatDType | 'int64' | 'int32' | 'uint8' | 'bool';

export type FloatArray = Float32Array | Float64Array;
/** int64 is a BigInt64Array so that values past 2^53 survive a round trip. */
export type DataArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

export function isFloat(d: DType): d is FloatDType {
  return d === 'float32' || d === 'float64';
}

export function allocate(dtype: DType, n: number): DataArray {
  switch (dtype) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int32': return new Int32Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'uint8': case 'bool': return new Uint8Array(n);
  }
}

export function allocateFloat(dtype: FloatDType, n: number): FloatArray {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

/** Arrays from 4 KiB up skip the zero fill in allocateFloatUnfilled; smaller ones cost nothing to zero. */
const UNFILLED_MIN_BYTES = 4096;
const nodeBuffer = (globalThis as { Buffer?: { allocUnsafeSlow(bytes: number): Uint8Array } }).Buffer;

/**
 * A float array of n elements for a kernel to overwrite whole: its initial contents are unspecified. Node's
 * Buffer.allocUnsafeSlow skips the zero fill that a typed array's allocation pays (about 0.05 ms per MB of reused
 * memory: 130 ms of a SparK step); elsewhere, or for small arrays, it is an ordinary (zeroed) array.
 */
export function allocateFloatUnfilled(dtype: FloatDType, n: number): FloatArray {
  const bytes = n * (dtype === 'float64' ? 8 : 4);
  if (!nodeBuffer || bytes < UNFILLED_MIN_BYTES) return allocateFloat(dtype, n);
  const buffer = nodeBuffer.allocUnsafeSlow(bytes).buffer as ArrayBuffer;
  return dtype === 'float64' ? new Float64Array(buffer, 0, n) : new Float32Array(buffer, 0, n);
}

/** The float type two operands compute in: float64 if either is. */
export function promoteFloat(a: DType, b: DType): FloatDType {
  return a === 'float64' || b === 'float64' ? 'float64' : 'float32';
}
