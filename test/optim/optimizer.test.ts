/**
 * The optimizer base: construction checks, skipping parameters without a grad, LAMB's in-place clipping and
 * per-group step count, and state dicts (JSON-ability, non-finite numbers, dtype conversion on load, prefixes,
 * and errors that list every problem).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Tensor } from '../../src/tensor/tensor.ts';
import { tensor, zeros } from '../../src/tensor/create.ts';
import { Parameter } from '../../src/nn/module.ts';
import { SGD, AdamW, LAMB, packStateDict, unpackStateDict, OptimizerStateError, clipGradNorm } from '../../src/optim/index.ts';

const param = (values: number[], shape = [values.length], dtype: 'float32' | 'float64' = 'float64') =>
  new Parameter(tensor(values, shape, { dtype }));
const vals = (t: Tensor): number[] => Array.from(t.data as Float64Array);
const grad = (p: Parameter, values: number[]) => { p.grad = new Tensor(Float64Array.from(values).slice(), p.shape, 'float64'); };

test('construction: defaults, per-group overrides, and checks', () => {
  const a = param([1, 2]), b = param([3]);
  const opt = new AdamW([{ params: [a], lr: 0.5, name: 'first' }, { params: [b], betas: [0.8, 0.9] }], { lr: 0.1 });
  assert.equal(opt.paramGroups.map((g) => [g.name, g.lr, g.weightDecay, g.betas, g.eps, g.lrScale, g.weightDecayScale]),
    [['first', 0.5, 1e-2, [0.9, 0.999], 1e-8, 1, 1], ['group1', 0.1, 1e-2, [0.8, 0.9], 1e-8, 1, 1]]);
  assert.throws(() => new SGD([a, a], { lr: 0.1 }), /more than one group/);
  assert.throws(() => new SGD([{ params: [a] }, { params: [a] }], { lr: 0.1 }), /more than one group/);
  assert.throws(() => new SGD([new Tensor(new Int32Array(2), [2], 'int32')], { lr: 0.1 }), /float/);
  assert.throws(() => new SGD([a], { lr: 0.1, nesterov: true }), /nesterov/);
  assert.throws(() => new SGD([a], { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }), /nesterov/);
  assert.throws(() => new AdamW([a], { betas: [1, 0.9] }), /beta1/);
  assert.throws(() => new LAMB([a], { lr: -1 }), /learning rate/);
  assert.throws(() => new AdamW([]), /empty/);
});

test('a parameter with grad null is skipped (no update, no state); LAMB still counts the group step', () => {
  const a = param([1, 2]), b = param([3, 4]);
  for (const opt of [new SGD([a, b], { lr: 0.1, momentum: 0.9 }), new AdamW([a, b]), new LAMB([a, b])]) {
    const before = vals(b);
    grad(a, [0.1, 0.2]);
    b.grad = null;
    opt.step();
    assert.equal(vals(b), before);
    assert.equal(Object.keys(opt.stateDict().tensors).filter((k) => k.startsWith('state.1.')), []);
    assert.ok(Object.keys(opt.stateDict().tensors).some((k) => k.startsWith('state.0.')));
    if (opt instanceof LAMB) assert.equal(opt.groupSteps, [1]);
  }
});

test('LAMB: clipping divides the grads in place by g / maxGradNorm, and records g before clipping', () => {
  const a = param([0, 0]), b = param([0]);
  const opt = new LAMB([a, b], { maxGradNorm: 5 });
  grad(a, [6, 0]); grad(b, [8]);
  opt.step();
  assert.is(opt.globalGradNorm, 10);
  assert.equal(vals(a.grad!), [3, 0]);
  assert.equal(vals(b.grad!), [4]);
  // ‖p‖ = 0 → trust ratio 1; first Adam step moves each element by lr·sign(g) (up to eps)
  assert.ok(Math.abs((a.data as Float64Array)[0] + 1e-3 * 3 / (3 + 1e-6)) < 1e-15);
  // below the threshold nothing is touched
  grad(a, [1, 0]); grad(b, [1]);
  opt.step();
  assert.equal(vals(a.grad!), [1, 0]);
  assert.is(opt.globalGradNorm, Math.SQRT2);
});

test('LAMB: the trust ratio only applies to groups with weight decay, unless alwaysAdapt', () => {
  // one element, step 1: Adam direction u = g/(|g| + eps) ≈ ±1; with wd, u += wd·p and u *= |p|/|u|
  const run = (wd: number, alwaysAdapt: boolean) => {
    const p = param([2]);
    const opt = new LAMB([p], { lr: 0.1, weightDecay: wd, alwaysAdapt });
    grad(p, [0.5]);
    opt.step();
    return (p.data as Float64Array)[0];
  };
  const u = 0.5 / (0.5 + 1e-6);
  assert.ok(Math.abs(run(0, false) - (2 - 0.1 * u)) < 1e-15);          // plain Adam step
  assert.ok(Math.abs(run(0, true) - (2 - 0.1 * 2)) < 1e-15);           // ratio 2/u times u = ‖p‖
  assert.ok(Math.abs(run(0.1, false) - (2 - 0.1 * 2)) < 1e-15);        // same: a single element always moves by lr·|p|
});

test('state dict: JSON-able metadata, Infinity survives, loads into float32 parameters, prefixes', () => {
  const a = param([1, 2, 3, 4], [2, 2]), b = param([5]);
  const opt = new LAMB([{ params: [a], paramNames: ['w'] }, { params: [b], paramNames: ['b'], weightDecayScale: 0 }], { maxGradNorm: Infinity, weightDecay: 0.1 });
  grad(a, [1, -1, 2, 0]); grad(b, [3]);
  opt.step();
  const sd = opt.stateDict();
  assert.equal(Object.keys(sd.tensors).sort(), ['state.0.exp_avg', 'state.0.exp_avg_sq', 'state.1.exp_avg', 'state.1.exp_avg_sq']);
  assert.equal(sd.tensors['state.0.exp_avg'].shape, [2, 2]);
  const json = JSON.parse(JSON.stringify(sd.meta));
  assert.equal(json, sd.meta);
  assert.is(sd.meta.extra.maxGradNorm, 'Infinity');
  assert.equal(sd.meta.paramGroups.map((g) => g.params), [[0], [1]]);

  // into a float32 copy of the same parameters, through a packed form that shares a file with other tensors
  const packed = packStateDict(sd, 'opt.');
  const others = { 'model.w': zeros([2]), ...packed.tensors };
  const back = unpackStateDict(others, packed.metadata, 'opt.');
  const a32 = param([1, 2, 3, 4], [2, 2], 'float32'), b32 = param([5], [1], 'float32');
  const opt32 = new LAMB([{ params: [a32], paramNames: ['w'] }, { params: [b32], paramNames: ['b'] }], { maxGradNorm: 1 });
  opt32.loadStateDict(back);
  assert.is(opt32.maxGradNorm, Infinity);
  assert.equal(opt32.groupSteps, [1, 1]);
  assert.is(opt32.paramGroups[0].weightDecay, 0.1);
  assert.is(opt32.paramGroups[1].weightDecayScale, 0);
  const m = opt32.stateDict().tensors['state.0.exp_avg'];
  assert.is(m.dtype, 'float32');
  assert.equal(vals(m), Array.from(Float32Array.from(sd.tensors['state.0.exp_avg'].data as Float64Array)));
});

test('loadStateDict: every mismatch is reported, and nothing is changed', () => {
  const a = param([1, 2]), b = param([3]);
  const opt = new AdamW([{ params: [a], paramNames: ['a'] }, { params: [b], paramNames: ['b'] }]);
  grad(a, [1, 1]); grad(b, [1]);
  opt.step();
  const sd = opt.stateDict();

  assert.throws(() => new SGD([a, b], { lr: 1 }).loadStateDict(sd), /for AdamW, this optimizer is SGD/);
  const other = new AdamW([{ params: [param([1, 2, 3])], paramNames: ['a'] }, { params: [param([1])], paramNames: ['c'] }]);
  const before = other.stateDict();
  try {
    other.loadStateDict(sd);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, OptimizerStateError);
    const msg = (e as Error).message;
    assert.match(msg, /names differ/);
    assert.match(msg, /state\.0\.exp_avg: shape \[2\], parameter \[3\]/);
  }
  assert.equal(other.stateDict(), before);
  assert.throws(() => new AdamW([a]).loadStateDict(sd), /2 parameter groups, this optimizer 1/);
  assert.throws(() => unpackStateDict({}, '{"format":"x"}'), (e: unknown) => e instanceof OptimizerStateError);
  assert.throws(() => unpackStateDict({}, 'not json'), /not JSON/);
});

test('SGD without momentum keeps no state; AdamW counts steps per parameter', () => {
  const a = param([1, 2]);
  const sgd = new SGD([a], { lr: 0.5, weightDecay: 0.1 });
  grad(a, [1, 1]);
  sgd.step();
  assert.equal(vals(a), [1 - 0.5 * (1 + 0.1 * 1), 2 - 0.5 * (1 + 0.1 * 2)]);
  assert.equal(sgd.stateDict().tensors, {});
  const b = param([1]), c = param([1]);
  const adam = new AdamW([b, c]);
  grad(b, [1]); grad(c, [1]);
  adam.step();
  c.grad = null;
  adam.step();
  assert.equal(adam.stateDict().meta.state, { 0: { step: 2 }, 1: { step: 1 } });
});

test('clipGradNorm: torch.nn.utils.clip_grad_norm_ semantics', () => {
  const a = param([0, 0]), b = param([0]), c = param([0]);
  grad(a, [6, 0]); grad(b, [8]); c.grad = null;
  assert.is(clipGradNorm([a, b, c], 5), 10);
  const coef = 5 / (10 + 1e-6);
  assert.equal(vals(a.grad!), [6 * coef, 0]);
  assert.equal(vals(b.grad!), [8 * coef]);
  grad(a, [3, 0]); grad(b, [4]);
  assert.is(clipGradNorm([a, b], 5), 5);          // coef = 5/(5 + 1e-6) < 1: PyTorch scales here too
  assert.equal(vals(b.grad!), [4 * (5 / (5 + 1e-6))]);
  grad(a, [1, 0]);
  assert.is(clipGradNorm([a], 5), 1);
  assert.equal(vals(a.grad!), [1, 0]);
});

test.run();
