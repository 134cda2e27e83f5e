/**
 * Shared by the WebAssembly kernel tests: the skip notice (uvu has no skip, so a test without wasm SIMD prints
 * that it skipped and returns, never passes silently), a seeded generator, and the float32 agreement check.
 */
import * as assert from 'uvu/assert';
import { wasmAvailable, wasmDescription } from '../../../kernels/wasm/runtime.ts';

/** True when the wasm kernels can run; otherwise prints a SKIPPED line naming the test and the reason. */
export function wasmOrSkip(what: string): boolean {
  if (wasmAvailable()) return true;
  console.log(`SKIPPED ${what}: WebAssembly SIMD kernels ${wasmDescription()}`);
  return false;
}

/** A tiny deterministic generator (mulberry32), so a failing seed reproduces. */
export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomF32(n: number, rand: () => number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rand() * 2 - 1;
  return out;
}

export const abs64 = (x: ArrayLike<number>) => Float64Array.from(x, Math.abs);

/** float32 unit roundoff. */
export const U32 = 2 ** -24;

/**
 * The float32 tolerance. The wasm kernels sum `terms` products in float32 (in whatever order and blocking), so each
 * result is within about terms·u·S of the exact sum, S = Σ|terms| (the standard bound for recursive summation,
 * nu/(1−nu) ≈ nu with u = 2⁻²⁴); the reference sums in doubles and rounds once to float32 (within u·S). So they
 * agree to (terms + 1)·u·S; we allow 2·(terms + 2)·u·S. S comes from running the reference on |inputs|.
 */
export function assertClose(
  what: string, got: ArrayLike<number>, want: ArrayLike<number>, magnitude: ArrayLike<number>, terms: number,
): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const tol = 2 * (terms + 2) * U32 * magnitude[i];
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      assert.unreachable(`${what} [${i}]: wasm ${got[i]} reference ${want[i]} (tolerance ${tol})`);
    }
  }
}
