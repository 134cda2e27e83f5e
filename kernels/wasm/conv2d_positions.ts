/**
 * Convolutions with very few output positions (a ResNet's last stage at 64² input: 2×2 maps), as gemms per
 * output position over only the filter taps that land inside the image. With the images as columns,
 * X_i[c, n] = x[n, c, i] at input position i, Y_o[k, n] = y[n, k, o], and W_t the K × C matrix of tap t:
 *
 *   forward          Y_o  (K × N) = Σ_{t: i(o, t) inside} W_t  · X_{i(o,t)}
 *   backward input   dX_i (C × N) = Σ_{(o, t): i(o, t) = i}  W_tᵀ · dY_o
 *   backward weight  dW_t (K × C) = Σ_{o: i(o, t) inside}     dY_o · X_{i(o,t)}ᵀ
 *
 * with i(o, t) = (oh·sH − pH + r·dH, ow·sW − pW + s·dW). im2col would multiply every tap, padding included: at
 * 2×2 with a 3×3 filter, 36 tap products per position pair where 16 read the image (each output sees 4 of its 9
 * taps), and its per-row im2col and col2im walks dominate such small maps. Here each operand is packed once into
 * the micro-kernel's strip layout (the filter bank by packTaps, one matrix per tap; positions by packA / packB)
 * and every product is a `macro` call on packed blocks. Tasks: one per (output block, MC rows), handed out to
 * the threads (runTasks). A 1×1 filter has no taps to skip, so it stays with im2col (which was faster there).
 * Same contracts as conv2d.ts's entries (float32, one group); `kernels/cpu/conv2d.ts`'s `…Ref` loops are the
 * reference twins.
 */
import type { Conv2dParams } from '../cpu/conv2d.ts';
import { KC, MC } from './gemm.ts';
import { MR, NR } from './module.ts';
import type { ProgramCall } from './pool.ts';
import type { WasmRuntime } from './runtime.ts';

/**
 * Output positions per image up to which this path runs. Measured (N16, 2 threads, ms forward / backward input /
 * backward weight, im2col with images batched → this path): 3×3 filters, C512→512 at 2×2 8.3/6.8/8.3 →
 * 3.6/3.9/3.3; C768→768 at 3×3 26/25/24 → 16/16/16; stride 2, C256→512 4²→2² 5.5/4.2/3.6 → 2.3/3.2/2.6 and
 * 6²→3² 9.7/8.2/9.3 → 5.5/6.3/6.7. At 4×4 outputs it was no faster (C128→256 stride 2, 8²→4²: 4.7/3.3/3.8 →
 * 5.2/3.8/4.2; the C256 stride-1 one, which Winograd takes, 3.1/3.6/3.0 → 3.0/3.3/2.5).
 */
export const POSITIONS_MAX_OUTPUTS = 9;
/**
 * Images from which it runs: the images are the gemm's columns, and the micro-kernel's tiles are NR = 16 wide,
 * so with fewer than 8 images most of each tile would be computed for nothing.
 */
export const POSITIONS_MIN_IMAGES = 8;

/** Tests lower the thresholds to reach this path with small shapes. */
export interface PositionsOptions {
  positionsMaxOutputs?: number;
  positionsMinImages?: number;
}

/** Whether conv2d.ts should hand p to this file. */
export function positionsApply(p: Conv2dParams, opts: PositionsOptions = {}): boolean {
  const P = p.OH * p.OW;
  return p.groups === 1 && p.R * p.S > 1 && P > 0 && P <= (opts.positionsMaxOutputs ?? POSITIONS_MAX_OUTPUTS) &&
    p.N >= (opts.positionsMinImages ?? POSITIONS_MIN_IMAGES) && p.C > 0 && p.K > 0;
}

/** A (output position o, tap t, input position i) triple whose tap reads the image. */
interface Pair { o: number; t: number; i: number }

function pairs(p: Conv2dParams): Pair[] {
  const out: Pair[] = [];
  for (let oh = 0; oh < p.OH; oh++) {
    for (let ow = 0; ow < p.OW; ow++) {
      for (let r = 0; r < p.R; r++) {
        const ih = oh * p.strideH - p.padH + r * p.dilationH;
        if (ih < 0 || ih >= p.H) continue;
        for (let s = 0; s < p.S; s++) {
          const iw = ow * p.strideW - p.padW + s * p.dilationW;
          if (iw >= 0 && iw < p.W) out.push({ o: oh * p.OW + ow, t: r * p.S + s, i: ih * p.W + iw });
        }
      }
    }
  }
  return out;
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

/** The KC-deep slices [k0, k0 + kc) of a depth D. */
function slices(D: number): [number, number][] {
  const out: [number, number][] = [];
  for (let k0 = 0; k0 < D; k0 += KC) out.push([k0, Math.min(KC, D - k0)]);
  return out;
}

/**
 * Packed operands: `blocks` matrices of `rows` (padded to the strip width) × D, each stored slice by slice in the
 * strip layout (module.ts's packA / packB): block q's slice [k0, k0 + kc), rows from r0, at
 * base + (q·rowsP·D + k0·rowsP + r0·kc)·4.
 */
interface Packed { base: number; rowsP: number; D: number }

function packedAt(m: Packed, q: number, k0: number, kc: number, r0 = 0): number {
  return m.base + (q * m.rowsP * m.D + k0 * m.rowsP + r0 * kc) * 4;
}

/**
 * The filter bank at wPtr (K × C × taps) as one packed matrix per tap: W_t (rows K, depth C) or, transposed,
 * W_tᵀ (rows C, depth K). The strips are split over the threads.
 */
function packFilters(rt: WasmRuntime, wPtr: number, p: Conv2dParams, transposed: boolean): Packed {
  const RS = p.R * p.S;
  const [rows, D] = transposed ? [p.C, p.K] : [p.K, p.C];
  const [sT, sK] = transposed ? [RS, p.C * RS] : [p.C * RS, RS];
  const m: Packed = { base: rt.alloc(RS * roundUp(rows, MR) * D), rowsP: roundUp(rows, MR), D };
  const tapBytes = m.rowsP * D * 4;
  const depth = slices(D);
  rt.runPieces(m.rowsP / MR, (s0, s1) => depth.map(([k0, kc]): ProgramCall => {
    const r0 = s0 * MR, total = Math.min(rows, s1 * MR) - r0;
    return ['packTaps', [wPtr + (r0 * sT + k0 * sK) * 4, sT, sK, RS, total, kc, packedAt(m, 0, k0, kc, r0), tapBytes]];
  }));
  return m;
}

/**
 * `blocks` matrices packed for the `kernel` ('packA': MR strips, 'packB': NR strips): block q has rows
 * [0, rows) and depth [0, D), element (row, d) at src + (q·sQ + row·sT + d·sK)·4.
 */
function packBlocks(
  rt: WasmRuntime, kernel: 'packA' | 'packB', src: number, blocks: number, sQ: number, rows: number, sT: number, D: number, sK: number,
): Packed {
  const m: Packed = { base: 0, rowsP: roundUp(rows, kernel === 'packA' ? MR : NR), D };
  m.base = rt.alloc(blocks * m.rowsP * D);
  const depth = slices(D);
  rt.runPieces(blocks, (q0, q1) => {
    const calls: ProgramCall[] = [];
    for (let q = q0; q < q1; q++) {
      for (const [k0, kc] of depth) calls.push([kernel, [src + (q * sQ + k0 * sK) * 4, sT, sK, rows, kc, packedAt(m, q, k0, kc)]]);
    }
    return calls;
  });
  return m;
}

/**
 * out_q (M × ncols, rows ncols floats apart, block q at out + q·M·ncols·4) = Σ over terms(q) of a_t · b_u, with
 * a_t the t-th matrix of `a` (M rows) and b_u the u-th of `b` (ncols columns), both of depth a.D; a block with
 * no terms is zeroed. One task per (q, MC rows).
 */
function sumsOfProducts(
  rt: WasmRuntime, out: number, blocks: number, M: number, ncols: number, a: Packed, b: Packed, terms: (q: number) => [number, number][],
): void {
  const depth = slices(a.D);
  rt.runTasks(MR * NR, (local) => {
    const tasks: ProgramCall[][] = [];
    for (let q = 0; q < blocks; q++) {
      const products = terms(q);
      for (let i0 = 0; i0 < M; i0 += MC) {
        const mc = Math.min(MC, M - i0), pc = out + (q * M + i0) * ncols * 4;
        if (products.length === 0) {
          tasks.push([['zeroFill', [pc, mc * ncols * 4]]]);
          continue;
        }
        const calls: ProgramCall[] = [];
        for (const [t, u] of products) {
          for (const [k0, kc] of depth) {
            calls.push(['macro', [mc, ncols, kc, packedAt(a, t, k0, kc, i0), packedAt(b, u, k0, kc), pc, ncols * 4, calls.length > 0 ? 1 : 0, local(0)]]);
          }
        }
        tasks.push(calls);
      }
    }
    return tasks;
  });
}

/**
 * dst[n, m, q] = mem[src + ((q·M + m)·N + n)·4]: blocks of M rows by N image columns back to the image-major
 * layout (small: these maps have at most a few positions).
 */
function fromColumns(rt: WasmRuntime, src: number, Q: number, M: number, N: number, dst: Float32Array): void {
  const f32 = rt.f32, base = src >>> 2;
  for (let q = 0; q < Q; q++) {
    for (let m = 0; m < M; m++) {
      const row = base + (q * M + m) * N;
      for (let n = 0; n < N; n++) dst[(n * M + m) * Q + q] = f32[row + n];
    }
  }
}

/**
 * The two passes that multiply by the filters: the forward (blocks Y_o = Σ W_t·X_i over the input x) and the
 * input gradient (blocks dX_i = Σ W_tᵀ·dY_o over dy, `transposed`), written to `out` in the image-major layout.
 */
function filterProducts(rt: WasmRuntime, src: Float32Array, w: Float32Array, out: Float32Array, p: Conv2dParams, transposed: boolean): void {
  const HW = p.H * p.W, P = p.OH * p.OW;
  const [inBlocks, inChans, outBlocks, outChans] = transposed ? [P, p.K, HW, p.C] : [HW, p.C, P, p.K];
  const mark = rt.mark();
  const srcPtr = rt.place(src), wPtr = rt.place(w);
  const A = packFilters(rt, wPtr, p, transposed);
  const B = packBlocks(rt, 'packB', srcPtr, inBlocks, 1, p.N, inChans * inBlocks, inChans, inBlocks);
  const sums = rt.alloc(outBlocks * outChans * p.N);
  const terms = Array.from({ length: outBlocks }, (): [number, number][] => []);
  for (const { o, t, i } of pairs(p)) {
    if (transposed) terms[i].push([t, o]);
    else terms[o].push([t, i]);
  }
  sumsOfProducts(rt, sums, outBlocks, outChans, p.N, A, B, (q) => terms[q]);
  fromColumns(rt, sums, outBlocks, outChans, p.N, out);
  rt.reset(mark);
}

/** y = conv(x, w) (see the file comment). */
export function conv2dPositions(rt: WasmRuntime, x: Float32Array, w: Float32Array, y: Float32Array, p: Conv2dParams): void {
  filterProducts(rt, x, w, y, p, false);
}

/** dx = the transposed conv of dy with w. */
export function conv2dBackwardInputPositions(rt: WasmRuntime, dy: Float32Array, w: Float32Array, dx: Float32Array, p: Conv2dParams): void {
  filterProducts(rt, dy, w, dx, p, true);
}

/** dw = ∂⟨conv(x, w), dy⟩/∂w. */
export function conv2dBackwardWeightPositions(rt: WasmRuntime, x: Float32Array, dy: Float32Array, dw: Float32Array, p: Conv2dParams): void {
  const { N, C, K, H, W } = p;
  const P = p.OH * p.OW, HW = H * W, RS = p.R * p.S;
  const mark = rt.mark();
  const xPtr = rt.place(x), dyPtr = rt.place(dy);
  // dY_o as rows k, depth n; X_i as depth n, columns c
  const A = packBlocks(rt, 'packA', dyPtr, P, 1, K, P, N, K * P);
  const B = packBlocks(rt, 'packB', xPtr, HW, 1, C, HW, N, C * HW);
  const perTap = rt.alloc(RS * K * C);
  const byTap = Array.from({ length: RS }, (): [number, number][] => []);
  for (const { o, t, i } of pairs(p)) byTap[t].push([o, i]);
  sumsOfProducts(rt, perTap, RS, K, C, A, B, (t) => byTap[t]);
  const dwPtr = rt.alloc(K * C * RS);
  rt.runPieces(K * C, (e0, e1) => [['interleaveTaps', [perTap, dwPtr, RS, e0, e1, K * C]]]);
  rt.read(dwPtr, K * C * RS, dw, 0);
  rt.reset(mark);
}
