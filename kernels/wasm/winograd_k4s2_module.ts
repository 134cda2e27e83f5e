/**
 * The WebAssembly kernels of the four-phase Winograd F(3×3, 2×2) convolution with a 4×4 kernel, stride 2 and
 * padding 1 (winograd_k4s2.ts has the math): the phase split of the input and its adjoint, the phase filter
 * transforms and their adjoint, and the F(3×3, 2×2) tile transforms (winograd_module.ts's gather and scatter with
 * tiles 3 apart).
 *
 *   phaseSplit(x, H, W, xp, Hp, Wp, C, pl0, pl1)
 *       for planes pl = n·C + c ∈ [pl0, pl1) of x (N, C, H, W), H and W even: x[n, c, 2u + p, 2v + q] goes to
 *       row u + p, column v + q of plane n·4C + (2p + q)·C + c of xp (planes Hp × Wp, zeroed by the caller).
 *   phaseMerge(xp, H, W, dx, Hp, Wp, C, pl0, pl1): the inverse read, dx[n, c, 2u + p, 2v + q] = that element.
 *   wgPhaseFilter(w, k0, k1, K, C, U)
 *       for filters k ∈ [k0, k1) of w (K, C, 4, 4): U[ξ][k][(2p + q)·C + c] = (G·g·Gᵀ)[ξ], g the 2×2 phase filter
 *       g[d][e] = w[k, c, 1 − p + 2d, 1 − q + 2e]; U is 16 matrices of K × 4C.
 *   wgPhaseFilterGrad(dU, k0, k1, K, C, dw): the adjoint, dw[k, c, 1 − p + 2d, 1 − q + 2e] = (Gᵀ·dU·G)[d][e].
 *
 * The filter transforms take four input channels per f32x4 vector (C ≥ 4; a last group overlaps the one before
 * it, rewriting the same values), the phase copies four columns (scalar past the last whole four).
 */
import type { FunctionBuilder, ModuleBuilder } from './builder.ts';
import { forLoop, transpose4 } from './emit.ts';
import { emitTileGather, emitTileScatter, transpose, type TransformMatrix } from './winograd_module.ts';

/** F(3, 2) at the points 0, 1, −1, ∞: y = Aᵀ[(G·g) ⊙ (Bᵀ·d)] on 4 inputs d, for y_i = g₀·d_i + g₁·d_{i+1}. */
export const PHASE_BT: TransformMatrix = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, -1, 0, 1]];
export const PHASE_AT: TransformMatrix = [[1, 1, 1, 0], [0, 1, -1, 0], [0, 1, 1, 1]];

/** phaseSplit ('split') and phaseMerge ('merge'): see the header; `img` is the (N, C, H, W) side. */
function emitPhaseCopy(m: ModuleBuilder, name: string, dir: 'split' | 'merge'): void {
  const params = [[dir === 'split' ? 'img' : 'xp', 'i32'], ['H', 'i32'], ['W', 'i32'], [dir === 'split' ? 'xp' : 'img', 'i32'],
    ['Hp', 'i32'], ['Wp', 'i32'], ['C', 'i32'], ['pl0', 'i32'], ['pl1', 'i32']] as const;
  m.func(name, params, [], (f) => {
    for (const n of ['pl', 'n', 'c', 'u', 'v', 'OH', 'OW', 'OW4', 'row', 'd0', 'd1', 'plane0', 'plane1', 'hpwp4']) f.local('i32', n);
    const a = f.local('v128'), b = f.local('v128');
    f.get('H').i32Const(1).i32ShrU().set('OH');
    f.get('W').i32Const(1).i32ShrU().set('OW');
    f.get('OW').i32Const(-4).i32And().set('OW4');
    f.get('Hp').get('Wp').i32Mul().i32Const(2).i32Shl().set('hpwp4');
    forLoop(f, 'pl', 'pl1', 1, () => f.get('pl0'), () => {
      f.get('pl').get('C').i32DivU().set('n');
      f.get('pl').get('n').get('C').i32Mul().i32Sub().set('c');
      for (let p = 0; p < 2; p++) {
        // plane (n, (2p + q)·C + c) at its row p, column q, for q = 0 and 1
        f.get('xp').get('n').get('C').i32Const(4).i32Mul().i32Mul().get('c').i32Add().get('C').i32Const(2 * p).i32Mul().i32Add()
          .get('hpwp4').i32Mul().i32Add().get('Wp').i32Const(4 * p).i32Mul().i32Add().set('plane0');
        f.get('plane0').get('C').get('hpwp4').i32Mul().i32Add().i32Const(4).i32Add().set('plane1');
        forLoop(f, 'u', 'OH', 1, () => f.i32Const(0), () => {
          f.get('img').get('pl').get('H').i32Mul().get('u').i32Const(1).i32Shl().i32Const(p).i32Add().i32Add().get('W').i32Mul()
            .i32Const(2).i32Shl().i32Add().set('row');
          f.get('plane0').get('u').get('Wp').i32Mul().i32Const(2).i32Shl().i32Add().set('d0');
          f.get('plane1').get('u').get('Wp').i32Mul().i32Const(2).i32Shl().i32Add().set('d1');
          const at = (base: string, scale: number) => f.get(base).get('v').i32Const(scale).i32Mul().i32Add();
          forLoop(f, 'v', 'OW4', 4, () => f.i32Const(0), () => {
            if (dir === 'split') {
              // columns 2v … 2v + 7 → evens to phase q = 0, odds to q = 1
              at('row', 8).v128Load().set(a);
              at('row', 8).v128Load(16).set(b);
              at('d0', 4).get(a).get(b).i32x4Shuffle([0, 2, 4, 6]).v128Store();
              at('d1', 4).get(a).get(b).i32x4Shuffle([1, 3, 5, 7]).v128Store();
            } else {
              at('d0', 4).v128Load().set(a);
              at('d1', 4).v128Load().set(b);
              at('row', 8).get(a).get(b).i32x4Shuffle([0, 4, 1, 5]).v128Store();
              at('row', 8).get(a).get(b).i32x4Shuffle([2, 6, 3, 7]).v128Store(16);
            }
          });
          forLoop(f, 'v', 'OW', 1, () => f.get('OW4'), () => {
            for (let q = 0; q < 2; q++) {
              if (dir === 'split') {
                at(q ? 'd1' : 'd0', 4);
                at('row', 8).f32Load(4 * q).f32Store();
              } else {
                at('row', 8);
                at(q ? 'd1' : 'd0', 4).f32Load().f32Store(4 * q);
              }
            }
          });
        });
      }
    });
  });
}

/**
 * The filter walk: k ∈ [k0, k1), groups of 4 channels from c; sets `fil` (filter (k, c) of the (K, C, 4, 4) array
 * `filters`) and `uc` (the address of (0, k, c) in the ξ matrices `mats`).
 */
function filterWalk(f: FunctionBuilder, filters: string, mats: string, body: () => void): void {
  for (const n of ['k', 'c0', 'c', 'Cm4', 'fil', 'uc', 'xiBytes', 'phaseBytes']) f.local('i32', n);
  f.get('C').i32Const(4).i32Sub().set('Cm4');
  f.get('K').get('C').i32Mul().i32Const(16).i32Mul().set('xiBytes');
  f.get('C').i32Const(2).i32Shl().set('phaseBytes');
  forLoop(f, 'k', 'k1', 1, () => f.get('k0'), () => {
    forLoop(f, 'c0', 'C', 4, () => f.i32Const(0), () => {
      // the last group overlaps the one before it when C is not a multiple of 4
      f.get('c0').get('Cm4').get('c0').get('Cm4').i32LtS().select().set('c');
      f.get(filters).get('k').get('C').i32Mul().get('c').i32Add().i32Const(64).i32Mul().i32Add().set('fil');
      f.get(mats).get('k').get('C').i32Mul().i32Const(4).i32Mul().get('c').i32Add().i32Const(2).i32Shl().i32Add().set('uc');
      body();
    });
  });
}

/** Pushes the address of U's (ξ, k, (2p + q)·C + c) for the walk's k and c. */
function uAddress(f: FunctionBuilder, xi: number, phase: number): FunctionBuilder {
  f.get('uc');
  if (xi > 0) f.get('xiBytes').i32Const(xi).i32Mul().i32Add();
  if (phase > 0) f.get('phaseBytes').i32Const(phase).i32Mul().i32Add();
  return f;
}

/** The 4×4 taps of four filters 64 bytes apart as vectors over the filters: tap[r][s], r, s < 4. */
function loadTaps(f: FunctionBuilder, rows: number[], tmp: number[], tap: number[][]): void {
  for (let r = 0; r < 4; r++) {
    for (let l = 0; l < 4; l++) f.get('fil').v128Load(64 * l + 16 * r).set(rows[l]);
    transpose4(f, rows, tmp, tap[r]);
  }
}

/** wgPhaseFilter and wgPhaseFilterGrad (see the header), f32x4 over 4 input channels. */
function emitPhaseFilters(m: ModuleBuilder): void {
  const half = (f: FunctionBuilder) => f.v128ConstF32([0.5, 0.5, 0.5, 0.5]).f32x4Mul();
  // G takes (a, b) to (a, ½(a + b), ½(a − b), b); Gᵀ takes u to (u₀ + ½(u₁ + u₂), ½(u₁ − u₂) + u₃)
  const g = (f: FunctionBuilder, a: number, b: number, out: number[]) => {
    f.get(a).set(out[0]);
    f.get(a).get(b).f32x4Add();
    half(f).set(out[1]);
    f.get(a).get(b).f32x4Sub();
    half(f).set(out[2]);
    f.get(b).set(out[3]);
  };
  const gt = (f: FunctionBuilder, u: number[], out: number[]) => {
    f.get(u[1]).get(u[2]).f32x4Add();
    half(f).get(u[0]).f32x4Add().set(out[0]);
    f.get(u[1]).get(u[2]).f32x4Sub();
    half(f).get(u[3]).f32x4Add().set(out[1]);
  };
  const params = (src: string, dst: string) =>
    [[src, 'i32'], ['k0', 'i32'], ['k1', 'i32'], ['K', 'i32'], ['C', 'i32'], [dst, 'i32']] as const;
  m.func('wgPhaseFilter', params('w', 'U'), [], (f) => {
    const rows = Array.from({ length: 4 }, () => f.local('v128')), tmp = Array.from({ length: 4 }, () => f.local('v128'));
    const tap = Array.from({ length: 4 }, () => Array.from({ length: 4 }, () => f.local('v128')));
    const gg = Array.from({ length: 4 }, () => Array.from({ length: 2 }, () => f.local('v128')));
    const u = Array.from({ length: 4 }, () => f.local('v128'));
    filterWalk(f, 'w', 'U', () => {
      loadTaps(f, rows, tmp, tap);
      for (let p = 0; p < 2; p++) {
        for (let q = 0; q < 2; q++) {
          // the phase filter's rows are w rows 1 − p and 3 − p, its columns w columns 1 − q and 3 − q
          const col = [0, 1].map((e) => [0, 1].map((d) => tap[1 - p + 2 * d][1 - q + 2 * e]));
          for (let e = 0; e < 2; e++) g(f, col[e][0], col[e][1], [gg[0][e], gg[1][e], gg[2][e], gg[3][e]]);
          for (let i = 0; i < 4; i++) {
            g(f, gg[i][0], gg[i][1], u);
            for (let j = 0; j < 4; j++) uAddress(f, 4 * i + j, 2 * p + q).get(u[j]).v128Store();
          }
        }
      }
    });
  });
  m.func('wgPhaseFilterGrad', params('dU', 'dw'), [], (f) => {
    const rows = Array.from({ length: 4 }, () => f.local('v128')), tmp = Array.from({ length: 4 }, () => f.local('v128'));
    const tap = Array.from({ length: 4 }, () => Array.from({ length: 4 }, () => f.local('v128')));
    const du = Array.from({ length: 4 }, () => f.local('v128'));
    const half4x2 = Array.from({ length: 4 }, () => Array.from({ length: 2 }, () => f.local('v128')));
    const outCol = Array.from({ length: 2 }, () => f.local('v128'));
    filterWalk(f, 'dw', 'dU', () => {
      for (let p = 0; p < 2; p++) {
        for (let q = 0; q < 2; q++) {
          for (let i = 0; i < 4; i++) {
            for (let j = 0; j < 4; j++) uAddress(f, 4 * i + j, 2 * p + q).v128Load().set(du[j]);
            gt(f, du, half4x2[i]);
          }
          for (let e = 0; e < 2; e++) {
            gt(f, half4x2.map((r) => r[e]), outCol);
            for (let d = 0; d < 2; d++) f.get(outCol[d]).set(tap[1 - p + 2 * d][1 - q + 2 * e]);
          }
        }
      }
      for (let r = 0; r < 4; r++) {
        transpose4(f, tap[r], tmp, rows);
        for (let l = 0; l < 4; l++) f.get('fil').get(rows[l]).v128Store(64 * l + 16 * r);
      }
    });
  });
}

export function emitWinogradK4S2(m: ModuleBuilder): void {
  emitPhaseCopy(m, 'phaseSplit', 'split');
  emitPhaseCopy(m, 'phaseMerge', 'merge');
  emitPhaseFilters(m);
  emitTileGather(m, 'phaseInput', PHASE_BT, 3);
  emitTileScatter(m, 'phaseOutput', PHASE_AT, 3);
  emitTileGather(m, 'phaseOutputGrad', transpose(PHASE_AT), 3);
  emitTileScatter(m, 'phaseInputGrad', transpose(PHASE_BT), 3);
}
