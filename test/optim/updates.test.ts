// kernels/cpu/optim_updates.ts: SGD's float32 fast loop (no weight decay, not Nesterov) gives the general rule's
// values bit for bit over several steps, dampening included; the general rule is the one the golden tests check.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { sgdMomentumUpdate } from '../../kernels/cpu/optim_updates.ts';

/** The general rule, written out (as src/optim/sgd.ts documents it), in doubles rounded where float32 stores. */
function sgdReference(w: Float32Array, g: Float32Array, buf: Float32Array, lr: number, mu: number, dampening: number, first: boolean): void {
  for (let i = 0; i < w.length; i++) {
    buf[i] = first ? g[i] : mu * buf[i] + (1 - dampening) * g[i];
    w[i] = w[i] - lr * buf[i];
  }
}

test('SGD momentum: the float32 fast loop equals the general rule bit for bit', () => {
  fc.assert(fc.property(
    fc.integer({ min: 1, max: 300 }), fc.double({ min: 1e-4, max: 1, noNaN: true }), fc.double({ min: 0, max: 0.99, noNaN: true }),
    fc.constantFrom(0, 0.1), fc.nat(),
    (n, lr, mu, dampening, seed) => {
      let s = seed;
      const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
      const w = Float32Array.from({ length: n }, rand), w2 = w.slice();
      const buf = new Float32Array(n), buf2 = new Float32Array(n);
      for (let step = 0; step < 4; step++) {
        const g = Float32Array.from({ length: n }, rand);
        sgdMomentumUpdate(w, g, buf, { lr, wd: 0, mu, dampening, nesterov: false, first: step === 0 }, Math.fround);
        sgdReference(w2, g, buf2, lr, mu, dampening, step === 0);
      }
      assert.ok(w.every((v, i) => Object.is(v, w2[i])) && buf.every((v, i) => Object.is(v, buf2[i])));
    },
  ), { numRuns: 200 });
});

test.run();
