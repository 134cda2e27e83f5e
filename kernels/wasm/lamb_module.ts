/**
 * The WebAssembly source of LAMB's per-parameter update (kernels/cpu/lamb.ts has the math; kernels/wasm/lamb.ts
 * drives it). The reference computes in doubles and rounds to float32 where PyTorch rounds; these kernels do the
 * same arithmetic on f64x2 lanes (f32 pairs widened exactly, `fround` as demote-then-promote), so every stored
 * value is bit for bit the reference's. Only ‖w‖² and ‖u‖² are summed in another order (two lanes, then added).
 *
 *   lambDir(w, g, m, v, u, n, prm, flags, norms)   n a multiple of 2; prm: f64 [clip, β1, β2, β3, 1 − β2, bc1,
 *       bc2Sqrt, eps, wd]; flags: bit 0 divide g by clip, bit 1 add wd·w; norms: f64 [‖w‖², ‖u‖²] (written)
 *   lambApply(w, u, n, prm)                         prm: f64 [lr, ratio];  w ← w − lr·fround(u·ratio)
 *
 * SGD's momentum update (kernels/cpu/optim_updates.ts, its plain float32 case) likewise, bit for bit:
 *
 *   sgdMomentum(w, g, buf, n, prm)   prm: f64 [lr, μ, 1 − dampening]; buf ← fround(μ·buf + (1 − dampening)·g),
 *       w ← w − lr·buf; any n (a last odd element alone)
 */
import type { FunctionBuilder, ModuleBuilder } from './builder.ts';
import { forLoop } from './emit.ts';

/** Rounds an f64x2 on the stack to float32 and back (Math.fround on both lanes). */
function fround2(f: FunctionBuilder): FunctionBuilder {
  return f.f32x4DemoteF64x2Zero().f64x2PromoteLowF32x4();
}

/** Pushes floats i, i + 1 of the f32 array at byte address `arr`, widened to an f64x2 (i4 = 4·i). */
function load2(f: FunctionBuilder, arr: string): FunctionBuilder {
  return f.get(arr).get('i4').i32Add().v128Load64Zero().f64x2PromoteLowF32x4();
}

/** Stores the f64x2 in local `val` as floats i, i + 1 of `arr` (rounded to float32). */
function store2(f: FunctionBuilder, arr: string, val: number): void {
  f.get(arr).get('i4').i32Add().get(val).f32x4DemoteF64x2Zero().v128Store64Lane(0);
}

export function emitLamb(m: ModuleBuilder): void {
  const dirParams = [['w', 'i32'], ['g', 'i32'], ['m', 'i32'], ['v', 'i32'], ['u', 'i32'], ['n', 'i32'], ['prm', 'i32'],
    ['flags', 'i32'], ['norms', 'i32']] as const;
  m.func('lambDir', dirParams, [], (f) => {
    f.local('i32', 'i');
    f.local('i32', 'i4');
    const names = ['clip', 'b1', 'b2', 'b3', 'omb2', 'bc1', 'bc2', 'eps', 'wd'];
    const k = Object.fromEntries(names.map((nm) => [nm, f.local('v128', nm)]));
    names.forEach((nm, j) => f.get('prm').f64Load(8 * j).f64x2Splat().set(k[nm]));
    const [gi, mi, vi, ui, wi, wAcc, uAcc] = [0, 1, 2, 3, 4, 5, 6].map(() => f.local('v128'));
    forLoop(f, 'i', 'n', 2, () => f.i32Const(0), () => {
      f.get('i').i32Const(2).i32Shl().set('i4');
      // g ← fround(g / clip) when clipping; gᵢ is what is stored
      load2(f, 'g').set(gi);
      f.get('flags').i32Const(1).i32And().if(() => {
        f.get(gi).get(k.clip).f64x2Div();
        fround2(f).set(gi);
        store2(f, 'g', gi);
      });
      // m ← fround(β1·m + β3·g)
      f.get(k.b1);
      load2(f, 'm').f64x2Mul().get(k.b3).get(gi).f64x2Mul().f64x2Add();
      fround2(f).set(mi);
      store2(f, 'm', mi);
      // v ← fround(β2·v + ((1 − β2)·g)·g)
      f.get(k.b2);
      load2(f, 'v').f64x2Mul().get(k.omb2).get(gi).f64x2Mul().get(gi).f64x2Mul().f64x2Add();
      fround2(f).set(vi);
      store2(f, 'v', vi);
      // u = fround(fround(m / bc1) / fround(fround(sqrt(v) / bc2Sqrt) + eps)), then fround(u + wd·w) with decay
      f.get(mi).get(k.bc1).f64x2Div();
      fround2(f);
      f.get(vi).f64x2Sqrt().get(k.bc2).f64x2Div();
      fround2(f).get(k.eps).f64x2Add();
      fround2(f).f64x2Div();
      fround2(f).set(ui);
      load2(f, 'w').set(wi);
      f.get('flags').i32Const(2).i32And().if(() => {
        f.get(ui).get(k.wd).get(wi).f64x2Mul().f64x2Add();
        fround2(f).set(ui);
      });
      store2(f, 'u', ui);
      f.get(wAcc).get(wi).get(wi).f64x2Mul().f64x2Add().set(wAcc);
      f.get(uAcc).get(ui).get(ui).f64x2Mul().f64x2Add().set(uAcc);
    });
    f.get('norms').get(wAcc).f64x2ExtractLane(0).get(wAcc).f64x2ExtractLane(1).f64Add().f64Store(0);
    f.get('norms').get(uAcc).f64x2ExtractLane(0).get(uAcc).f64x2ExtractLane(1).f64Add().f64Store(8);
  });

  m.func('lambApply', [['w', 'i32'], ['u', 'i32'], ['n', 'i32'], ['prm', 'i32']], [], (f) => {
    f.local('i32', 'i');
    f.local('i32', 'i4');
    const [lr, ratio, wi] = [0, 1, 2].map(() => f.local('v128'));
    f.get('prm').f64Load(0).f64x2Splat().set(lr);
    f.get('prm').f64Load(8).f64x2Splat().set(ratio);
    forLoop(f, 'i', 'n', 2, () => f.i32Const(0), () => {
      f.get('i').i32Const(2).i32Shl().set('i4');
      // w − lr·fround(u·ratio)
      load2(f, 'w').get(lr);
      load2(f, 'u').get(ratio).f64x2Mul();
      fround2(f).f64x2Mul().f64x2Sub().set(wi);
      store2(f, 'w', wi);
    });
  });
}

export function emitSgd(m: ModuleBuilder): void {
  m.func('sgdMomentum', [['w', 'i32'], ['g', 'i32'], ['buf', 'i32'], ['n', 'i32'], ['prm', 'i32']], [], (f) => {
    f.local('i32', 'i');
    f.local('i32', 'i4');
    f.local('i32', 'pairs');
    const [lr, mu, keep, bi, wi] = [0, 1, 2, 3, 4].map(() => f.local('v128'));
    f.get('prm').f64Load(0).f64x2Splat().set(lr);
    f.get('prm').f64Load(8).f64x2Splat().set(mu);
    f.get('prm').f64Load(16).f64x2Splat().set(keep);
    f.get('n').i32Const(-2).i32And().set('pairs');
    const step = (load: (arr: string) => void, store: (arr: string, v: number) => void) => {
      // buf ← fround(μ·buf + keep·g); w ← w − lr·buf
      f.get(mu);
      load('buf');
      f.f64x2Mul().get(keep);
      load('g');
      f.f64x2Mul().f64x2Add();
      fround2(f).set(bi);
      store('buf', bi);
      load('w');
      f.get(lr).get(bi).f64x2Mul().f64x2Sub().set(wi);
      store('w', wi);
    };
    forLoop(f, 'i', 'pairs', 2, () => f.i32Const(0), () => {
      f.get('i').i32Const(2).i32Shl().set('i4');
      step((arr) => load2(f, arr), (arr, v) => store2(f, arr, v));
    });
    // the odd last element: the same arithmetic on lane 0
    f.get('pairs').get('n').i32LtS().if(() => {
      f.get('pairs').i32Const(2).i32Shl().set('i4');
      step(
        (arr) => { f.get(arr).get('i4').i32Add().f32Load().f64PromoteF32().f64x2Splat(); },
        (arr, v) => { f.get(arr).get('i4').i32Add().get(v).f64x2ExtractLane(0).f32DemoteF64().f32Store(); },
      );
    });
  });
}
