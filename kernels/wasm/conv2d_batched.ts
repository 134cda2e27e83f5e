/**
 * Convolutions with few output positions per image (P = OH·OW small: the SparK decoder's 768- and 384-channel
 * layers at 3×3, 6×6 and 12×12, a ResNet's last stages on small inputs), run with a chunk of nb images side by
 * side in one column matrix instead of one gemm per image:
 *
 *   col_b[(c·R + r)·S + s, i·P + o] = the im2col of image n₀ + i          (i < nb; rows nb·P floats apart)
 *   forward          yᵀ_g (Kg × nb·P)   = w_g · col_b, then image i's Kg × P block is copied into y
 *   backward input   dcol_b (CgRS × nb·P) = w_gᵀ · dyᵀ_g (dyᵀ_g gathered from dy the same way), col2im per image
 *   backward weight  dw_g (Kg × CgRS)  += dyᵀ_g · col_bᵀ, one gemm nb·P deep instead of nb gemms P deep
 *
 * Per image those gemms are at most P wide (or deep): the weight, up to 768·768·16 floats, was packed again for
 * every image, and the micro-kernel's 16-wide tiles ran partly empty; the decoder's first block ran at 6–25
 * GFLOP/s that way. Here the weight is packed once per chunk. The im2col, col2im and block copies of a chunk
 * split its images over the threads; the gemm splits its column blocks (gemmPtr). Same contracts as conv2d.ts's
 * entries (float32 arrays, groups allowed); `kernels/cpu/conv2d.ts`'s `…Ref` loops are the reference twins.
 */
import type { Conv2dParams } from '../cpu/conv2d.ts';
import { gemmPtr } from './gemm.ts';
import type { ProgramCall } from './pool.ts';
import type { WasmRuntime } from './runtime.ts';

/**
 * Output positions per image below which images are batched. Measured in the SparK step on the bench machine
 * (N = 16, 2 threads): the decoder's 768-channel convolutions at P = 9 and 36 went from 6–38 GFLOP/s one image
 * at a time to 37–69; from P = 256 on (the transposed convolutions at 24², 48² outputs) one image at a time was
 * 10–25% faster.
 */
export const BATCHED_MAX_POSITIONS = 256;

/** Columns of a chunk's column matrix (nb·P) aimed at: one panel of the gemm (gemm.ts's NC). */
const CHUNK_COLUMNS = 4096;
/** Floats a chunk's column matrix may take (64 MiB). */
const CHUNK_FLOATS = 1 << 24;

/** Tests lower these to reach every path with small shapes. */
export interface BatchOptions {
  /** Output positions per image below which images are batched (default BATCHED_MAX_POSITIONS; 0: never). */
  batchMaxPositions?: number;
  /** Columns a chunk aims at (default CHUNK_COLUMNS). */
  chunkColumns?: number;
}

/** Whether conv2d.ts should hand p to this file: several images, each with few output positions. */
export function batchesImages(p: Conv2dParams, opts: BatchOptions = {}): boolean {
  return p.N > 1 && p.OH * p.OW > 0 && p.OH * p.OW < (opts.batchMaxPositions ?? BATCHED_MAX_POSITIONS);
}

/** Images per chunk: enough to fill a gemm panel, few enough for the column matrix's memory cap. */
function imagesPerChunk(p: Conv2dParams, opts: BatchOptions): number {
  const P = p.OH * p.OW, CRS = (p.C / p.groups) * p.R * p.S;
  return Math.max(1, Math.min(p.N, Math.floor((opts.chunkColumns ?? CHUNK_COLUMNS) / P), Math.floor(CHUNK_FLOATS / (CRS * P))));
}

/** Runs calls(i) for the m images of a chunk, handed out in pieces to the runtime's threads as they come free. */
function perImage(rt: WasmRuntime, m: number, calls: (i: number) => ProgramCall[]): void {
  rt.runPieces(m, (i0, i1) => Array.from({ length: i1 - i0 }, (_, k) => calls(i0 + k)).flat());
}

/**
 * Sizes, the chunking, and the calls that move image i of a chunk (group g) between its own layout and its block
 * of columns i·P … i·P + P − 1 in a matrix `cols` columns wide:
 *   im2col / col2im           an input image (C, H, W) ↔ the column matrix (CgRS × cols)
 *   toColumns / fromColumns   an output image's group (Kg, P) ↔ a (Kg × cols) matrix
 */
function layout(p: Conv2dParams, ranges: number, opts: BatchOptions) {
  const { N, C, H, W, K, R, S, OH, OW, groups } = p;
  const Cg = C / groups, Kg = K / groups, P = OH * OW, HW = H * W;
  const tail = (cols: number) => [ranges, Cg, H, W, R, S, OH, OW, p.strideH, p.strideW, p.padH, p.padW, p.dilationH, p.dilationW, cols];
  const input = (images: number, i: number, g: number) => images + (i * C + g * Cg) * HW * 4;
  const output = (images: number, i: number, g: number) => images + (i * K + g * Kg) * P * 4;
  return {
    N, C, K, groups, Kg, P, HW, CRS: Cg * R * S, nb: imagesPerChunk(p, opts),
    im2col: (x: number, col: number, cols: number, i: number, g: number): ProgramCall =>
      ['im2col', [input(x, i, g), col + i * P * 4, ...tail(cols)]],
    col2im: (dcol: number, dx: number, cols: number, i: number, g: number): ProgramCall =>
      ['col2im', [dcol + i * P * 4, input(dx, i, g), ...tail(cols)]],
    toColumns: (y: number, yT: number, cols: number, i: number, g: number): ProgramCall =>
      ['copyRows', [output(y, i, g), P, yT + i * P * 4, cols, Kg, P]],
    fromColumns: (yT: number, y: number, cols: number, i: number, g: number): ProgramCall =>
      ['copyRows', [yT + i * P * 4, cols, output(y, i, g), P, Kg, P]],
  };
}

/** Runs body(n0, m, cols) for each chunk of m ≤ nb images starting at image n0 (cols = m·P columns). */
function forChunks(N: number, nb: number, P: number, body: (n0: number, m: number, cols: number) => void): void {
  for (let n0 = 0; n0 < N; n0 += nb) {
    const m = Math.min(nb, N - n0);
    body(n0, m, m * P);
  }
}

/** y = conv(x, w) over chunks of images; ranges: im2col's range table (conv2d.ts) already in memory. */
export function conv2dBatched(rt: WasmRuntime, x: Float32Array, wPtr: number, y: Float32Array, p: Conv2dParams, ranges: number, opts: BatchOptions): void {
  const { N, C, K, groups, Kg, P, HW, CRS, nb, im2col, fromColumns } = layout(p, ranges, opts);
  const xPtr = rt.alloc(nb * C * HW), yPtr = rt.alloc(nb * K * P);
  const col = rt.alloc(CRS * nb * P), yT = rt.alloc(Kg * nb * P);
  forChunks(N, nb, P, (n0, m, cols) => {
    rt.write(xPtr, x, n0 * C * HW, m * C * HW);
    for (let g = 0; g < groups; g++) {
      perImage(rt, m, (i) => [im2col(xPtr, col, cols, i, g)]);
      gemmPtr({ M: Kg, N: cols, K: CRS, transA: false, transB: false, accumulate: false }, wPtr + g * Kg * CRS * 4, col, yT, rt);
      perImage(rt, m, (i) => [fromColumns(yT, yPtr, cols, i, g)]);
    }
    rt.read(yPtr, m * K * P, y, n0 * K * P);
  });
}

/** dx = the transposed conv of dy with w, over chunks of images. */
export function conv2dBackwardInputBatched(rt: WasmRuntime, dy: Float32Array, wPtr: number, dx: Float32Array, p: Conv2dParams, ranges: number, opts: BatchOptions): void {
  const { N, C, K, groups, Kg, P, HW, CRS, nb, col2im, toColumns } = layout(p, ranges, opts);
  const dyPtr = rt.alloc(nb * K * P), dxPtr = rt.alloc(nb * C * HW);
  const dyT = rt.alloc(Kg * nb * P), dcol = rt.alloc(CRS * nb * P);
  forChunks(N, nb, P, (n0, m, cols) => {
    rt.write(dyPtr, dy, n0 * K * P, m * K * P);
    for (let g = 0; g < groups; g++) {
      perImage(rt, m, (i) => [toColumns(dyPtr, dyT, cols, i, g)]);
      gemmPtr({ M: CRS, N: cols, K: Kg, transA: true, transB: false, accumulate: false }, wPtr + g * Kg * CRS * 4, dyT, dcol, rt);
      perImage(rt, m, (i) => [col2im(dcol, dxPtr, cols, i, g)]);
    }
    rt.read(dxPtr, m * C * HW, dx, n0 * C * HW);
  });
}

/** dw (zeroed by the caller, at dwPtr) += the weight gradient, over chunks of images. */
export function conv2dBackwardWeightBatched(rt: WasmRuntime, x: Float32Array, dy: Float32Array, dwPtr: number, p: Conv2dParams, ranges: number, opts: BatchOptions): void {
  const { N, C, K, groups, Kg, P, HW, CRS, nb, im2col, toColumns } = layout(p, ranges, opts);
  const xPtr = rt.alloc(nb * C * HW), dyPtr = rt.alloc(nb * K * P);
  const col = rt.alloc(CRS * nb * P), dyT = rt.alloc(Kg * nb * P);
  forChunks(N, nb, P, (n0, m, cols) => {
    rt.write(xPtr, x, n0 * C * HW, m * C * HW);
    rt.write(dyPtr, dy, n0 * K * P, m * K * P);
    for (let g = 0; g < groups; g++) {
      perImage(rt, m, (i) => [im2col(xPtr, col, cols, i, g), toColumns(dyPtr, dyT, cols, i, g)]);
      gemmPtr({ M: Kg, N: CRS, K: cols, transA: false, transB: true, accumulate: true }, dyT, col, dwPtr + g * Kg * CRS * 4, rt);
    }
  });
}
