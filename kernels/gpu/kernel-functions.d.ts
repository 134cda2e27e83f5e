/**
 * The helper functions GpuRuntime adds to its GPU instance, so that every kernel function may call them.
 * They exist only inside gpu.js kernels (declared here for the type checker).
 */

/** ⌊a/b⌋ for integers a ≥ 0, b > 0 held in floats, exact below 2^24. */
declare function idiv(a: number, b: number): number;

/** Σ_k coord_k·s_k for the flat index i of a row-major (d0, …, d5) grid. */
declare function stridedOffset(i: number, d1: number, d2: number, d3: number, d4: number, d5: number,
  s0: number, s1: number, s2: number, s3: number, s4: number, s5: number): number;
