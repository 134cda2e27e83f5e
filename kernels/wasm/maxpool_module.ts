/**
 * The WebAssembly max pool (kernels/wasm/maxpool.ts drives it; kernels/cpu/pool.ts's maxPool2d is the reference):
 *
 *   maxPool(x, y, argmax, rows, cols, H, W, OH, OW, dilH, dilW, pl0, pl1)
 *       for planes pl ∈ [pl0, pl1) of x (planes of H × W floats): y[pl, oh, ow] = the max of the window whose
 *       rows run from rows[2·oh] to rows[2·oh + 1] (past the end) in steps of dilH, columns likewise from cols
 *       (i32 tables, the reference's clipped windows), argmax the flat index ih·W + iw of the first maximum in
 *       row-major order; a NaN always takes over, as in the reference (and PyTorch's CPU kernel).
 *
 * Scalar: the windows are 2–3 taps wide; the gain over the JS loop is the typed, monomorphic inner loop and the
 * threads (planes split over them).
 */
import type { ModuleBuilder } from './builder.ts';
import { forLoop } from './emit.ts';

export function emitMaxPool(m: ModuleBuilder): void {
  const params = [['x', 'i32'], ['y', 'i32'], ['argmax', 'i32'], ['rows', 'i32'], ['cols', 'i32'], ['H', 'i32'], ['W', 'i32'],
    ['OH', 'i32'], ['OW', 'i32'], ['dilH', 'i32'], ['dilW', 'i32'], ['pl0', 'i32'], ['pl1', 'i32']] as const;
  m.func('maxPool', params, [], (f) => {
    for (const n of ['pl', 'oh', 'ow', 'ih', 'iw', 'ih1', 'iw0', 'iw1', 'xp', 'out', 'idx', 'bestIdx', 'take']) f.local('i32', n);
    const best = f.local('f32'), v = f.local('f32');
    forLoop(f, 'pl', 'pl1', 1, () => f.get('pl0'), () => {
      f.get('x').get('pl').get('H').i32Mul().get('W').i32Mul().i32Const(2).i32Shl().i32Add().set('xp');
      // out: byte offset of (pl, oh, ow) in y and argmax
      f.get('pl').get('OH').i32Mul().get('OW').i32Mul().i32Const(2).i32Shl().set('out');
      forLoop(f, 'oh', 'OH', 1, () => f.i32Const(0), () => {
        f.get('rows').get('oh').i32Const(3).i32Shl().i32Add().i32Load(4).set('ih1');
        forLoop(f, 'ow', 'OW', 1, () => f.i32Const(0), () => {
          f.get('cols').get('ow').i32Const(3).i32Shl().i32Add().i32Load().set('iw0');
          f.get('cols').get('ow').i32Const(3).i32Shl().i32Add().i32Load(4).set('iw1');
          f.f32Const(-Infinity).set(best);
          f.get('rows').get('oh').i32Const(3).i32Shl().i32Add().i32Load().set('ih');
          f.get('ih').get('W').i32Mul().get('iw0').i32Add().set('bestIdx');
          // step 0: the bodies step ih and iw by the dilation themselves
          forLoop(f, 'ih', 'ih1', 0, () => f.get('ih'), () => {
            forLoop(f, 'iw', 'iw1', 0, () => f.get('iw0'), () => {
              f.get('ih').get('W').i32Mul().get('iw').i32Add().set('idx');
              f.get('xp').get('idx').i32Const(2).i32Shl().i32Add().f32Load().set(v);
              // branch-free: on random data the running maximum changes too often to predict
              f.get(v).get(best).f32Gt().get(v).get(v).f32Ne().i32Or().set('take');
              f.get(v).get(best).get('take').select().set(best);
              f.get('idx').get('bestIdx').get('take').select().set('bestIdx');
              f.get('iw').get('dilW').i32Add().set('iw');
            });
            f.get('ih').get('dilH').i32Add().set('ih');
          });
          f.get('y').get('out').i32Add().get(best).f32Store();
          f.get('argmax').get('out').i32Add().get('bestIdx').i32Store();
          f.get('out').i32Const(4).i32Add().set('out');
        });
      });
    });
  });
}
