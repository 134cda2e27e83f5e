// The tape: accumulation, noGrad, detach, requiresGrad propagation, retainGrad, graph release and its error,
// shared subgraphs, and flat memory over many training steps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import v8 from 'node:v8';
import vm from 'node:vm';
import { tensor, randn, noGrad, mul, add, sum, F, Tensor, manualSeed, zeros, ones, reshape, matmul, transpose, onesLike, nn } from '../../src/index.ts';

const f64 = (data: number[], requiresGrad = true) => tensor(data, [data.length], { dtype: 'float64', requiresGrad });

test('gradients accumulate over several backward calls', () => {
  const x = f64([1, 2]);
  sum(mul(x, 3)).backward();
  sum(mul(x, x)).backward();
  assert.equal(x.grad!.toArray(), [5, 7]);
});

test('a tensor used twice gets the sum of both paths (shared subgraph visited once)', () => {
  const x = f64([2]);
  const y = mul(x, x);
  const z = add(mul(y, 3), y);
  z.backward(tensor([1], [1], { dtype: 'float64' }));
  assert.equal(x.grad!.toArray(), [16]);
});

test('noGrad records nothing; detach cuts; requiresGrad propagates only from inputs that need it', () => {
  const x = f64([1]);
  const y = noGrad(() => mul(x, 2));
  assert.is(y.requiresGrad, false);
  assert.is(y.gradFn, null);
  assert.is(mul(x.detach(), 2).requiresGrad, false);
  assert.is(mul(f64([1], false), 2).requiresGrad, false);
  const z = mul(x, f64([3], false));
  assert.is(z.requiresGrad, true);
  assert.is(z.isLeaf, false);
  assert.throws(() => sum(y).backward(), /backward: this tensor does not require grad/);
});

test('no two tensors share a gradient buffer: pass-through gradients are copied, a leaf\'s own is kept', () => {
  const buffer = (t: { data: unknown }) => (t.data as Float32Array).buffer;
  // add returns its incoming gradient for both inputs; reshape's is a view of it; the caller's stays the caller's
  const a = randn([2, 3], { requiresGrad: true }), b = randn([2, 3], { requiresGrad: true }), c = randn([6], { requiresGrad: true });
  const seed = randn([2, 3]);
  add(add(a, b), reshape(c, [2, 3])).backward(seed);
  const bufs = [a.grad!, b.grad!, c.grad!].map(buffer);
  assert.is(new Set([...bufs, buffer(seed)]).size, 4, 'a, b, c and the seed gradient hold four buffers');
  (a.grad!.data as Float32Array)[0] += 1; // what an optimizer's in-place clip does
  assert.is.not(b.grad!.data[0], a.grad!.data[0]);
  // a gradient made for the leaf alone (matmul's) is not copied, and the result is the same
  const w = randn([3, 4], { requiresGrad: true }), x = randn([2, 3]);
  sum(matmul(x, w)).backward();
  const want = matmul(transpose(x, 0, 1), onesLike(randn([2, 4])));
  for (let i = 0; i < 12; i++) assert.ok(Math.abs(w.grad!.data[i] as number - (want.data[i] as number)) < 1e-5);
});

test('zeroGrad({ setToNone: false }) zeroes grads in place and the next backward writes into the same buffers', () => {
  const lin = new nn.Linear(3, 2);
  const x = randn([4, 3]);
  const run = () => sum(mul(lin.forward(x), lin.forward(x))).backward();
  run();
  const first = lin.weight.grad!, want = Array.from(first.data as Float32Array);
  lin.zeroGrad({ setToNone: false });
  assert.is(lin.weight.grad, first, 'kept');
  assert.ok(Array.from(first.data as Float32Array).every((v) => v === 0), 'zeroed');
  run();
  assert.is(lin.weight.grad, first, 'written in place');
  assert.equal(Array.from(first.data as Float32Array), want);
  run(); // no zeroGrad: accumulates, into a new tensor as without setToNone
  for (let i = 0; i < want.length; i++) assert.ok(Math.abs((lin.weight.grad!.data[i] as number) - 2 * want[i]) <= 1e-6 * Math.abs(want[i]));
  // a parameter the next backward does not reach reads zero, and the default still sets grads to null
  const unused = new nn.Linear(3, 2);
  sum(unused.forward(x)).backward();
  unused.zeroGrad({ setToNone: false });
  run();
  assert.ok(Array.from(unused.weight.grad!.data as Float32Array).every((v) => v === 0));
  lin.zeroGrad();
  assert.is(lin.weight.grad, null);
});

test('.grad lands on leaves only, unless retainGrad', () => {
  const x = f64([1, 2]);
  const h = mul(x, 2);
  const k = mul(x, 3).retainGrad();
  sum(mul(h, k)).backward();
  assert.is(h.grad, null);
  assert.equal(k.grad!.toArray(), [2, 4]);
});

test('backward needs an explicit gradient for non-scalars, of the right shape', () => {
  const x = f64([1, 2]);
  assert.throws(() => mul(x, 2).backward(), /the gradient can be implied only for a scalar; pass one for shape \[2\]/);
  assert.throws(() => mul(x, 2).backward(f64([1], false)), /gradient of shape \[1\] does not match the tensor's \[2\]/);
});

test('the graph is released after backward; a second pass is a clear error unless retainGraph', () => {
  const x = f64([1, 2]);
  const loss = sum(mul(x, x));
  loss.backward(undefined, { retainGraph: true });
  loss.backward();
  assert.equal(x.grad!.toArray(), [4, 8]);
  assert.throws(() => loss.backward(), /already released by an earlier backward; pass \{ retainGraph: true \}/);
});

test('requiresGrad can be set on leaves only, and only for floats', () => {
  const x = f64([1]);
  assert.throws(() => { mul(x, 2).requiresGrad = false; }, /only be set on a leaf/);
  assert.throws(() => tensor([1], [1], { dtype: 'int64', requiresGrad: true }), /only float tensors can require gradients, not int64/);
});

test('memory stays flat over 1,000 training steps (graphs are released)', () => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  manualSeed(0);
  const w = randn([16, 8, 3, 3], { requiresGrad: true });
  const g = ones([16], { requiresGrad: true });
  const b = zeros([16], { requiresGrad: true });
  const rm = zeros([16]), rv = ones([16]);
  const x = randn([4, 8, 8, 8]);
  const heapAt: number[] = [];
  for (let step = 1; step <= 1000; step++) {
    const y = F.relu(F.batchNorm(F.conv2d(x, w, undefined, { padding: 1 }), rm, rv, g, b, { training: true }));
    const loss = sum(mul(y, y));
    loss.backward();
    noGrad(() => {
      for (const p of [w, g, b] as Tensor[]) {
        const d = p.data as Float32Array, gr = p.grad!.data as Float32Array;
        for (let i = 0; i < d.length; i++) d[i] -= 1e-5 * gr[i];
        p.grad = null;
      }
    });
    if (step === 100 || step === 1000) {
      gc();
      heapAt.push(process.memoryUsage().heapUsed);
    }
  }
  const growthMB = (heapAt[1] - heapAt[0]) / 2 ** 20;
  assert.ok(growthMB < 8, `heap grew ${growthMB.toFixed(1)} MB between step 100 and step 1000`);
});

test.run();
