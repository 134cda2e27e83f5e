/**
 * PyTorch golden values for the ops: outputs and gradients against fixtures that test/fixtures/gen_ops.py wrote
 * with PyTorch in float64 (CI only reads the committed files in test/fixtures/ops/).
 *
 * For every case the fixture holds the inputs `<case>.in<k>`, the output `<case>.out`, a fixed random output
 * gradient `<case>.gout` and the gradients `<case>.grad.in<k>` of (out · gout).sum() for the differentiable
 * inputs; `<case>.after.in<k>` is an input after the call, for buffers updated in place (BatchNorm's running
 * statistics). Each case runs twice here:
 *   float64: the inputs as they are, compared tightly (see F64_TOL);
 *   float32: every float input cast to float32 as a new leaf, compared with the float64 reference under
 *            tolerances relative to the largest magnitude (see F32_OUT_TOL, F32_GRAD_TOL).
 *
 * The CASES table below mirrors the one in gen_ops.py: same families, names, order and attributes (the PyTorch
 * expression of each case is in the fixture's metadata and is printed on failure). A test per family checks that
 * the two tables list the same cases. Set GOLDEN_REPORT=1 to print the worst error of each family.
 *
 * Run: npx uvu -r tsx test/ops golden
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import {
  Tensor, F, add, sub, mul, div, pow, maximum, minimum, neg, exp, log, sqrt, rsqrt, abs, erf, clamp, where,
  sum, mean, var as variance, max, min, argmax, matmul, reshape, permute, transpose, expand, slice, narrow, pad,
  concat, stack, repeat, indexSelect, gather, upsampleNearest,
} from '../../src/index.ts';
import { loadSafetensors, loadSafetensorsMetadata } from '../../src/io/index.ts';

/**
 * float64: max |got − ref| ≤ 1e-10 · max(1, max |ref|). Both sides compute in float64 and differ only in the order
 * of operations (summation order, fused vs composed formulas), which costs a few ulp (≈1e-16 relative) per
 * operation, amplified at most by the few hundred terms of these small reductions: ~1e-13. 1e-10 leaves ample room
 * for that yet is far below any error a wrong formula, index or boundary rule would make (≥1e-3 typically).
 * The max(1, ·) keeps the bound absolute for results much smaller than 1.
 */
const F64_TOL = 1e-10;
/**
 * float32 against the float64 reference: max |got − ref| ≤ tol · max |ref|. float32 rounds to ~6e-8 relative
 * per operation; after reductions over up to a few hundred terms (conv windows, batch statistics) the error
 * relative to the largest magnitude of the result stays around 1e-6, so 1e-5 for outputs. Gradients go through
 * about twice as many operations (and differences like x − mean in the norms), hence 1e-4. The bound is relative
 * to the largest magnitude rather than per element because small elements carry absolute, not relative, error.
 */
const F32_OUT_TOL = 1e-5;
const F32_GRAD_TOL = 1e-4;

const FIXTURES = fileURLToPath(new URL('../fixtures/ops/', import.meta.url));

// ------------------------------------------------------------------------------------------ the case table

type Run = (x: Tensor[]) => Tensor;
interface Case {
  name: string;
  run: Run;
  /** indices of the inputs that require grad (the fixture has `<case>.grad.in<k>` for exactly these) */
  grads: number[];
  /** indices of inputs the op updates in place (the fixture has `<case>.after.in<k>`) */
  after: number[];
  /** set for a known mismatch with PyTorch: the case is skipped and the reason printed */
  known?: string;
}

const c = (name: string, run: Run, grads: number[] = [], after: number[] = []): Case => ({ name, run, grads, after });
/**
 * A case that disagrees with PyTorch because of a library bug (not a tolerance question): wrap it as
 *   // KNOWN MISMATCH: <op, config, expected vs got>
 *   knownMismatch('<short reason>', c('name', ...)),
 * so that only this case is skipped (and listed as skipped) until the bug is fixed. None at present.
 */
const knownMismatch = (reason: string, cs: Case): Case => ({ ...cs, known: reason });

// Keep in step with CASES in test/fixtures/gen_ops.py (each line here has its twin there, in the same order).
const CASES: Record<string, Case[]> = {
  elementwise: [
    c('add.same', (x) => add(x[0], x[1]), [0, 1]),
    c('add.bcast', (x) => add(x[0], x[1]), [0, 1]),
    c('add.scalar', (x) => add(x[0], 2.5), [0]),
    c('add.0d', (x) => add(x[0], x[1]), [0, 1]),
    c('sub.bcast', (x) => sub(x[0], x[1]), [0, 1]),
    c('sub.rscalar', (x) => sub(1.5, x[0]), [0]),
    c('mul.odd', (x) => mul(x[0], x[1]), [0, 1]),
    c('mul.bcast', (x) => mul(x[0], x[1]), [0, 1]),
    c('div.bcast', (x) => div(x[0], x[1]), [0, 1]),
    c('div.rscalar', (x) => div(2.0, x[0]), [0]),
    c('pow.scalar', (x) => pow(x[0], 2.5), [0]),
    c('pow.negscalar', (x) => pow(x[0], -1.5), [0]),
    c('pow.tensor', (x) => pow(x[0], x[1]), [0, 1]),
    c('pow.zerobase', (x) => pow(x[0], x[1]), [0, 1]),
    c('maximum.ties', (x) => maximum(x[0], x[1]), [0, 1]),
    c('maximum.bcast', (x) => maximum(x[0], x[1]), [0, 1]),
    c('maximum.scalar', (x) => maximum(x[0], 0), [0]),
    c('minimum.ties', (x) => minimum(x[0], x[1]), [0, 1]),
    c('minimum.bcast', (x) => minimum(x[0], x[1]), [0, 1]),
    c('neg', (x) => neg(x[0]), [0]),
    c('exp', (x) => exp(x[0]), [0]),
    c('log', (x) => log(x[0]), [0]),
    c('sqrt', (x) => sqrt(x[0]), [0]),
    c('rsqrt', (x) => rsqrt(x[0]), [0]),
    c('abs', (x) => abs(x[0]), [0]),
    c('relu', (x) => F.relu(x[0]), [0]),
    c('relu6', (x) => F.relu6(x[0]), [0]),
    c('gelu', (x) => F.gelu(x[0]), [0]), // exact GELU = approximate='none'
    c('sigmoid', (x) => F.sigmoid(x[0]), [0]),
    c('tanh', (x) => F.tanh(x[0]), [0]),
    c('erf', (x) => erf(x[0]), [0]),
    c('clamp.both', (x) => clamp(x[0], -0.5, 0.75), [0]),
    c('clamp.min', (x) => clamp(x[0], -0.25), [0]),
    c('clamp.max', (x) => clamp(x[0], -Infinity, 0.5), [0]),
    c('where.bcast', (x) => where(x[0], x[1], x[2]), [1, 2]),
    c('where.scalar', (x) => where(x[0], x[1], 0.0), [1]),
  ],
  reduce: [
    c('sum.all', (x) => sum(x[0]), [0]),
    c('sum.axis1', (x) => sum(x[0], 1), [0]),
    c('sum.axes02.keep', (x) => sum(x[0], [0, 2], true), [0]),
    c('sum.neg', (x) => sum(x[0], -1), [0]),
    c('mean.all', (x) => mean(x[0]), [0]),
    c('mean.axes02', (x) => mean(x[0], [0, 2]), [0]),
    c('mean.neg.keep', (x) => mean(x[0], -1, true), [0]),
    c('var.unbiased.all', (x) => variance(x[0]), [0]),
    c('var.biased.axis1', (x) => variance(x[0], 1, { unbiased: false }), [0]),
    c('var.unbiased.axes02.keep', (x) => variance(x[0], [0, 2], { unbiased: true, keepdim: true }), [0]),
    c('var.biased.neg.keep', (x) => variance(x[0], -1, { unbiased: false, keepdim: true }), [0]),
    c('var.unbiased.axes01', (x) => variance(x[0], [0, 1]), [0]),
    c('amax.all', (x) => max(x[0], [0, 1]), [0]),
    c('amax.axis1', (x) => max(x[0], 1), [0]),
    c('amax.axes02.keep', (x) => max(x[0], [0, 2], true), [0]),
    c('amin.axis0', (x) => min(x[0], 0), [0]),
    c('amin.neg.keep', (x) => min(x[0], -1, true), [0]),
    c('argmax.all', (x) => argmax(x[0])),
    c('argmax.axis1', (x) => argmax(x[0], 1)),
    c('argmax.axis0.keep', (x) => argmax(x[0], 0, true)),
  ],
  matmul: [
    c('mm', (x) => matmul(x[0], x[1]), [0, 1]),
    c('mm.odd', (x) => matmul(x[0], x[1]), [0, 1]),
    c('bmm', (x) => matmul(x[0], x[1]), [0, 1]),
    c('bcast.4d3d', (x) => matmul(x[0], x[1]), [0, 1]),
    c('bcast.2d3d', (x) => matmul(x[0], x[1]), [0, 1]),
    c('vec.mat', (x) => matmul(x[0], x[1]), [0, 1]),
    c('mat.vec', (x) => matmul(x[0], x[1]), [0, 1]),
    c('vec.vec', (x) => matmul(x[0], x[1]), [0, 1]),
    c('vec.batched', (x) => matmul(x[0], x[1]), [0, 1]),
    c('batched.vec', (x) => matmul(x[0], x[1]), [0, 1]),
    c('linear.bias', (x) => F.linear(x[0], x[1], x[2]), [0, 1, 2]),
    c('linear.nobias', (x) => F.linear(x[0], x[1]), [0, 1]),
    c('linear.3d', (x) => F.linear(x[0], x[1], x[2]), [0, 1, 2]),
  ],
  movement: [
    c('reshape', (x) => reshape(x[0], [4, -1]), [0]),
    c('permute', (x) => permute(x[0], [2, 0, 3, 1]), [0]),
    c('transpose', (x) => transpose(x[0], 0, 2), [0]),
    c('transpose.neg', (x) => transpose(x[0], -1, -2), [0]),
    c('expand', (x) => expand(x[0], [2, 3, 5, 4]), [0]),
    c('expand.keep', (x) => expand(x[0], [-1, 4]), [0]),
    c('slice.step', (x) => slice(x[0], 1, 1, 8, 2), [0]),
    c('slice.neg', (x) => slice(x[0], 0, -4, -1), [0]),
    c('slice.step3', (x) => slice(x[0], 0, 0, 7, 3), [0]),
    c('slice.clampend', (x) => slice(x[0], 2, 2, 100), [0]),
    c('narrow', (x) => narrow(x[0], 1, 2, 3), [0]),
    c('narrow.neg', (x) => narrow(x[0], 0, -3, 2), [0]),
    c('pad.last', (x) => pad(x[0], [1, 2]), [0]),
    c('pad.asym4d', (x) => pad(x[0], [1, 0, 2, 3], 0.5), [0]),
    c('pad.3dims', (x) => pad(x[0], [0, 1, 2, 0, 1, 1], -1.0), [0]),
    c('concat.axis0', (x) => concat([x[0], x[1], x[2]], 0), [0, 1, 2]),
    c('concat.neg', (x) => concat([x[0], x[1]], -1), [0, 1]),
    c('stack.axis0', (x) => stack([x[0], x[1], x[2]], 0), [0, 1, 2]),
    c('stack.neg', (x) => stack([x[0], x[1]], -1), [0, 1]),
    c('repeat', (x) => repeat(x[0], [2, 3]), [0]),
    c('repeat.lead', (x) => repeat(x[0], [2, 1, 2]), [0]),
    c('indexSelect.axis0', (x) => indexSelect(x[0], 0, x[1]), [0]),
    c('indexSelect.axis1', (x) => indexSelect(x[0], 1, x[1]), [0]),
    c('gather.axis1', (x) => gather(x[0], 1, x[1]), [0]),
    c('gather.axis0', (x) => gather(x[0], 0, x[1]), [0]),
    c('gather.small', (x) => gather(x[0], 1, x[1]), [0]),
    c('upsample.2', (x) => upsampleNearest(x[0], 2), [0]),
    c('upsample.2x3', (x) => upsampleNearest(x[0], [2, 3]), [0]),
  ],
  conv: [
    c('conv.basic', (x) => F.conv2d(x[0], x[1], x[2]), [0, 1, 2]),
    c('conv.s2p1', (x) => F.conv2d(x[0], x[1], x[2], { stride: 2, padding: 1 }), [0, 1, 2]),
    c('conv.p2d2', (x) => F.conv2d(x[0], x[1], undefined, { padding: 2, dilation: 2 }), [0, 1]),
    c('conv.nonsquare', (x) => F.conv2d(x[0], x[1], x[2], { stride: [2, 1], padding: [1, 2] }), [0, 1, 2]),
    c('conv.mixed', (x) => F.conv2d(x[0], x[1], x[2], { stride: [2, 1], padding: [0, 1], dilation: [1, 2] }), [0, 1, 2]),
    c('conv.groups2', (x) => F.conv2d(x[0], x[1], x[2], { padding: 1, groups: 2 }), [0, 1, 2]),
    c('conv.depthwise', (x) => F.conv2d(x[0], x[1], x[2], { padding: 1, groups: 4 }), [0, 1, 2]),
    c('conv.depthwise7', (x) => F.conv2d(x[0], x[1], x[2], { padding: 3, groups: 3 }), [0, 1, 2]),
    c('conv.dwmult.s2', (x) => F.conv2d(x[0], x[1], undefined, { stride: 2, groups: 3 }), [0, 1]),
    c('conv.1x1', (x) => F.conv2d(x[0], x[1], x[2]), [0, 1, 2]),
    c('conv.1x1.s2', (x) => F.conv2d(x[0], x[1], undefined, { stride: 2 }), [0, 1]),
    c('conv.1x1.p1', (x) => F.conv2d(x[0], x[1], x[2], { padding: 1 }), [0, 1, 2]),
    c('conv.s3k2', (x) => F.conv2d(x[0], x[1], x[2], { stride: 3 }), [0, 1, 2]),
    c('conv.stem', (x) => F.conv2d(x[0], x[1], undefined, { stride: 2, padding: 3 }), [0, 1]),
    c('convT.spark', (x) => F.convTranspose2d(x[0], x[1], x[2], { stride: 2, padding: 1 }), [0, 1, 2]),
    c('convT.outpad', (x) => F.convTranspose2d(x[0], x[1], x[2], { stride: 2, padding: 1, outputPadding: 1 }), [0, 1, 2]),
    c('convT.groups2', (x) => F.convTranspose2d(x[0], x[1], x[2], { padding: 1, groups: 2 }), [0, 1, 2]),
    c('convT.dil2', (x) => F.convTranspose2d(x[0], x[1], undefined, { dilation: 2 }), [0, 1]),
    c('convT.nonsquare', (x) => F.convTranspose2d(x[0], x[1], x[2], { stride: [2, 1], padding: [1, 0], outputPadding: [1, 0] }), [0, 1, 2]),
    c('convT.plain', (x) => F.convTranspose2d(x[0], x[1], x[2]), [0, 1, 2]),
    c('convT.s3k2', (x) => F.convTranspose2d(x[0], x[1], x[2], { stride: 3 }), [0, 1, 2]),
    c('convT.s2g2op1', (x) => F.convTranspose2d(x[0], x[1], x[2], { stride: 2, padding: 1, outputPadding: 1, groups: 2 }), [0, 1, 2]),
  ],
  pool: [
    c('maxPool.stem', (x) => F.maxPool2d(x[0], { kernelSize: 3, stride: 2, padding: 1 }), [0]),
    c('maxPool.stem.even', (x) => F.maxPool2d(x[0], { kernelSize: 3, stride: 2, padding: 1 }), [0]),
    c('maxPool.ceil', (x) => F.maxPool2d(x[0], { kernelSize: 3, stride: 2, ceilMode: true }), [0]),
    c('maxPool.ceil.p1', (x) => F.maxPool2d(x[0], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true }), [0]),
    c('maxPool.k2', (x) => F.maxPool2d(x[0], { kernelSize: 2 }), [0]),
    c('maxPool.nonsquare', (x) => F.maxPool2d(x[0], { kernelSize: [3, 2], stride: [2, 1], padding: [1, 0] }), [0]),
    c('maxPool.dil2', (x) => F.maxPool2d(x[0], { kernelSize: 3, stride: 1, padding: 1, dilation: 2 }), [0]),
    c('avgPool.incl', (x) => F.avgPool2d(x[0], { kernelSize: 3, stride: 2, padding: 1, countIncludePad: true }), [0]),
    c('avgPool.excl', (x) => F.avgPool2d(x[0], { kernelSize: 3, stride: 2, padding: 1, countIncludePad: false }), [0]),
    c('avgPool.ceil.incl', (x) => F.avgPool2d(x[0], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: true }), [0]),
    c('avgPool.ceil.excl', (x) => F.avgPool2d(x[0], { kernelSize: 3, stride: 2, padding: 1, ceilMode: true, countIncludePad: false }), [0]),
    c('avgPool.ceil.nopad', (x) => F.avgPool2d(x[0], { kernelSize: 2, stride: 2, ceilMode: true }), [0]),
    c('avgPool.divisor', (x) => F.avgPool2d(x[0], { kernelSize: 3, stride: 2, padding: 1, divisorOverride: 5 }), [0]),
    c('avgPool.k2', (x) => F.avgPool2d(x[0], { kernelSize: 2 }), [0]),
    c('avgPool.nonsquare', (x) => F.avgPool2d(x[0], { kernelSize: [2, 3], stride: [1, 2], padding: [1, 1], countIncludePad: false }), [0]),
    c('adaptive.1', (x) => F.adaptiveAvgPool2d(x[0], 1), [0]),
    c('adaptive.5to3', (x) => F.adaptiveAvgPool2d(x[0], 3), [0]),
    c('adaptive.7x5to3x2', (x) => F.adaptiveAvgPool2d(x[0], [3, 2]), [0]),
    c('adaptive.up3to5', (x) => F.adaptiveAvgPool2d(x[0], 5), [0]),
  ],
  // BatchNorm inputs: x, runningMean, runningVar, weight, bias
  norm: [
    c('bn.train.m01', (x) => F.batchNorm(x[0], x[1], x[2], x[3], x[4], { training: true, momentum: 0.1, eps: 1e-5 }), [0, 3, 4], [1, 2]),
    c('bn.train.m03', (x) => F.batchNorm(x[0], x[1], x[2], x[3], x[4], { training: true, momentum: 0.3, eps: 1e-3 }), [0, 3, 4], [1, 2]),
    c('bn.train.2d', (x) => F.batchNorm(x[0], x[1], x[2], x[3], x[4], { training: true, momentum: 0.1 }), [0, 3, 4], [1, 2]),
    c('bn.train.noaffine', (x) => F.batchNorm(x[0], x[1], x[2], null, null, { training: true, momentum: 0.3 }), [0], [1, 2]),
    c('bn.eval', (x) => F.batchNorm(x[0], x[1], x[2], x[3], x[4], { training: false, eps: 1e-5 }), [0, 3, 4]),
    c('ln.last1', (x) => F.layerNorm(x[0], [6], x[1], x[2]), [0, 1, 2]),
    c('ln.last2', (x) => F.layerNorm(x[0], [4, 5], x[1], x[2], 1e-6), [0, 1, 2]),
    c('ln.noaffine', (x) => F.layerNorm(x[0], [7]), [0]),
  ],
  loss: [
    c('softmax.last', (x) => F.softmax(x[0], -1), [0]),
    c('softmax.axis0', (x) => F.softmax(x[0], 0), [0]),
    c('softmax.axis1.big', (x) => F.softmax(x[0], 1), [0]),
    c('logSoftmax.last', (x) => F.logSoftmax(x[0], -1), [0]),
    c('logSoftmax.axis1', (x) => F.logSoftmax(x[0], 1), [0]),
    c('logSoftmax.axis0', (x) => F.logSoftmax(x[0], 0), [0]),
    c('ce.mean', (x) => F.crossEntropy(x[0], x[1]), [0]),
    c('ce.ls.mean', (x) => F.crossEntropy(x[0], x[1], { labelSmoothing: 0.1 }), [0]),
    c('ce.sum', (x) => F.crossEntropy(x[0], x[1], { reduction: 'sum' }), [0]),
    c('ce.ls.sum', (x) => F.crossEntropy(x[0], x[1], { reduction: 'sum', labelSmoothing: 0.1 }), [0]),
    c('ce.none', (x) => F.crossEntropy(x[0], x[1], { reduction: 'none' }), [0]),
    c('ce.ls.none', (x) => F.crossEntropy(x[0], x[1], { reduction: 'none', labelSmoothing: 0.1 }), [0]),
    c('ce.ignore.default', (x) => F.crossEntropy(x[0], x[1]), [0]),
    c('ce.ignore2.ls', (x) => F.crossEntropy(x[0], x[1], { ignoreIndex: 2, labelSmoothing: 0.1 }), [0]),
    c('ce.ignore.none', (x) => F.crossEntropy(x[0], x[1], { reduction: 'none', ignoreIndex: -1 }), [0]),
    c('ce.ignore.ls.sum', (x) => F.crossEntropy(x[0], x[1], { reduction: 'sum', ignoreIndex: -1, labelSmoothing: 0.2 }), [0]),
    c('ce.4d', (x) => F.crossEntropy(x[0], x[1]), [0]),
    c('ce.4d.ls.none', (x) => F.crossEntropy(x[0], x[1], { reduction: 'none', labelSmoothing: 0.1 }), [0]),
    c('ce.prob', (x) => F.crossEntropy(x[0], x[1]), [0, 1]),
    c('ce.prob.ls', (x) => F.crossEntropy(x[0], x[1], { labelSmoothing: 0.1 }), [0]),
    c('ce.prob.none', (x) => F.crossEntropy(x[0], x[1], { reduction: 'none' }), [0]),
    c('ce.prob.4d.sum', (x) => F.crossEntropy(x[0], x[1], { reduction: 'sum' }), [0]),
    c('mse.mean', (x) => F.mseLoss(x[0], x[1]), [0, 1]),
    c('mse.sum', (x) => F.mseLoss(x[0], x[1], 'sum'), [0, 1]),
    c('mse.none', (x) => F.mseLoss(x[0], x[1], 'none'), [0, 1]),
  ],
};

// ------------------------------------------------------------------------------------------ comparison

type Precision = 'float64' | 'float32';

/** Worst normalised errors seen per family and precision (error / the tolerance's scale), for GOLDEN_REPORT. */
const worst = new Map<string, { out: number; outCase: string; grad: number; gradCase: string }>();

function note(key: string, kind: 'out' | 'grad', err: number, where: string): void {
  const w = worst.get(key) ?? { out: 0, outCase: '', grad: 0, gradCase: '' };
  if (kind === 'out' && err >= w.out) { w.out = err; w.outCase = where; }
  if (kind === 'grad' && err >= w.grad) { w.grad = err; w.gradCase = where; }
  worst.set(key, w);
}

/**
 * Check `got` against the float64 reference and return the normalised error: max |got − ref| divided by
 * max(1, max |ref|) in float64, by max |ref| in float32 (see the tolerances at the top).
 */
function compare(got: Tensor, ref: Tensor, prec: Precision, tol: number, what: string): number {
  assert.equal([...got.shape], [...ref.shape], `${what}: shape`);
  if (ref.dtype === 'int64') {
    assert.is(got.dtype, 'int64', `${what}: dtype`);
    assert.equal(Array.from(got.data as BigInt64Array), Array.from(ref.data as BigInt64Array), `${what}: values`);
    return 0;
  }
  assert.is(got.dtype, prec, `${what}: dtype`);
  let maxRef = 0, maxErr = 0, at = -1;
  for (let i = 0; i < ref.size; i++) {
    const r = Number(ref.data[i]), g = Number(got.data[i]);
    if (!Number.isFinite(g)) assert.unreachable(`${what}: element ${i} is ${g} (PyTorch: ${r})`);
    maxRef = Math.max(maxRef, Math.abs(r));
    const e = Math.abs(g - r);
    if (e > maxErr) { maxErr = e; at = i; }
  }
  const scale = prec === 'float64' ? Math.max(1, maxRef) : Math.max(maxRef, Number.MIN_VALUE);
  const err = maxErr / scale;
  if (!(err <= tol)) {
    assert.unreachable(`${what}: max |got − ref| = ${maxErr.toExponential(3)} at flat index ${at} (got ${Number(got.data[at])}, ` +
      `PyTorch ${Number(ref.data[at])}); ${err.toExponential(3)} of scale ${scale.toExponential(3)} exceeds ${tol}`);
  }
  return err;
}

/** A new leaf holding the same values: float inputs in `prec`, others (indices, masks) as they are. */
function leaf(t: Tensor, prec: Precision, requiresGrad: boolean): Tensor {
  const isFloat = t.dtype === 'float64' || t.dtype === 'float32';
  const copy = isFloat ? t.to(prec) : t.clone();
  if (requiresGrad) copy.requiresGrad = true;
  return copy;
}

function runCase(family: string, cs: Case, fx: Record<string, Tensor>, expr: string, prec: Precision): void {
  const key = (s: string) => `${cs.name}.${s}`;
  const inputs: Tensor[] = [];
  for (let k = 0; fx[key(`in${k}`)]; k++) inputs.push(leaf(fx[key(`in${k}`)], prec, cs.grads.includes(k)));
  const label = `${family}/${cs.name} [${prec}] ${expr}`;
  const outTol = prec === 'float64' ? F64_TOL : F32_OUT_TOL;
  const gradTol = prec === 'float64' ? F64_TOL : F32_GRAD_TOL;

  const out = cs.run(inputs);
  note(`${family} ${prec}`, 'out', compare(out, fx[key('out')], prec, outTol, `${label}: output`), cs.name);

  for (const k of cs.after) {
    note(`${family} ${prec}`, 'out', compare(inputs[k], fx[key(`after.in${k}`)], prec, outTol, `${label}: in${k} after the call`), cs.name);
  }

  if (cs.grads.length === 0) return;
  out.mul(leaf(fx[key('gout')], prec, false)).sum().backward();
  for (const k of cs.grads) {
    const g = inputs[k].grad;
    assert.ok(g, `${label}: in${k} got no gradient`);
    note(`${family} ${prec}`, 'grad', compare(g, fx[key(`grad.in${k}`)], prec, gradTol, `${label}: grad of in${k}`), `${cs.name} in${k}`);
  }
}

// ------------------------------------------------------------------------------------------ the tests

for (const [family, cases] of Object.entries(CASES)) {
  const fx = loadSafetensors(`${FIXTURES}${family}.safetensors`);
  const meta = loadSafetensorsMetadata(`${FIXTURES}${family}.safetensors`);
  const exprs = Object.fromEntries(Object.entries(meta).filter(([k]) => k !== 'generator' && k !== 'torch'));

  test(`${family}: the TS table and gen_ops.py list the same cases, with the same differentiable inputs`, () => {
    assert.equal(cases.map((cs) => cs.name), Object.keys(exprs));
    for (const cs of cases) {
      const grads = Object.keys(fx).filter((k) => k.startsWith(`${cs.name}.grad.in`)).map((k) => Number(k.slice(`${cs.name}.grad.in`.length)));
      const after = Object.keys(fx).filter((k) => k.startsWith(`${cs.name}.after.in`)).map((k) => Number(k.slice(`${cs.name}.after.in`.length)));
      assert.equal(grads.sort(), [...cs.grads].sort(), `${cs.name}: differentiable inputs`);
      assert.equal(after.sort(), [...cs.after].sort(), `${cs.name}: inputs updated in place`);
    }
  });

  for (const cs of cases) {
    for (const prec of ['float64', 'float32'] as const) {
      const name = `${family}/${cs.name} ${prec}`;
      if (cs.known) test.skip(`${name} (KNOWN MISMATCH: ${cs.known})`, () => {});
      else test(name, () => runCase(family, cs, fx, exprs[cs.name] ?? '?', prec));
    }
  }
}

test('report', () => {
  if (!process.env.GOLDEN_REPORT) return;
  const rows = [...worst.entries()].map(([k, w]) =>
    `${k.padEnd(22)} out ${w.out.toExponential(2)} (${w.outCase})`.padEnd(70) + ` grad ${w.grad.toExponential(2)} (${w.gradCase})`);
  console.log(`\nworst normalised errors (float64: /max(1,|ref|); float32: /max|ref|):\n${rows.join('\n')}`);
});

test.run();
