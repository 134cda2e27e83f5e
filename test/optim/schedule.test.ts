/**
 * The lr / wd schedules (spark-spec §8.2, §9) against closed-form values, the spec's examples, and the official
 * Python formulas evaluated by test/fixtures/gen_optim.py at sample iterations of the real R50 recipe
 * (metadata `schedule_samples` of test/fixtures/optim/trajectories.safetensors). Those are compared to 1e-15
 * relative: the same expressions in the same order, so only the last bit of cos may differ.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fileURLToPath } from 'node:url';
import { loadSafetensorsMetadata } from '../../src/io/index.ts';
import { Parameter } from '../../src/nn/module.ts';
import { zeros } from '../../src/tensor/create.ts';
import {
  roundHalfEven, lrForBatch, warmupCosineLr, cosineWd, pretrainSchedule, finetuneSchedule, applyLrWd, AdamW,
} from '../../src/optim/index.ts';

const near = (a: number, b: number, tol = 1e-15, what = '') =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(Math.abs(b), 1e-300), `${what}: ${a} vs ${b}`);

test('lrForBatch: base · bs / 256 (spec §8.1, §9)', () => {
  near(lrForBatch(2e-4, 4096), 3.2e-3);
  near(lrForBatch(2e-3, 2048), 0.016);
  near(lrForBatch(4e-4, 2048), 3.2e-3);
});

test('roundHalfEven is Python round()', () => {
  assert.equal([0.5, 1.5, 2.5, 12.5, 13.5, 12.4, 12.6, 7].map(roundHalfEven), [0, 2, 2, 12, 14, 12, 13, 7]);
});

test('lr: 0.5% of peak at it 0, linear warmup, peak at wp, 0.1% of peak at T − 1 (spec §8.2)', () => {
  const peak = 3.2e-3, ipe = 313;
  const s = pretrainSchedule({ peakLr: peak, wd: 0.04, wdEnd: 0.2, warmupEpochs: 40, epochs: 1600, itersPerEpoch: ipe });
  const T = 1600 * ipe, wp = 40 * ipe;
  near(s(0).lr, 0.005 * peak, 1e-15, 'it 0');
  near(s(0).lr, 1.6e-5, 1e-12, 'it 0 absolute');   // §8.7 logs "lr 2e-5" at it 0 (1.6e-5 printed with one digit)
  near(s(wp / 2).lr, peak * (0.005 + 0.995 * 0.5), 1e-15, 'mid warmup');
  near(s(wp).lr, peak, 1e-15, 'end of warmup');
  near(s(T - 1).lr, 0.001 * peak, 1e-12, 'last iteration');
  const mid = wp + (T - 1 - wp) / 2;
  near(s(mid).lr, peak * (0.001 + 0.999 * 0.5), 1e-12, 'half-way down the cosine');
  // monotone up in warmup, down after
  for (let it = 1; it < wp; it += 997) assert.ok(s(it).lr > s(it - 1).lr);
  for (let it = wp + 1; it < T; it += 9973) assert.ok(s(it).lr < s(it - 1).lr);
});

test('wd: cosine rising from 0.04 to 0.2 (spec §8.2)', () => {
  const T = 1000;
  const o = { wd: 0.04, wdEnd: 0.2, totalIters: T };
  near(cosineWd(0, o), 0.04);
  near(cosineWd(T - 1, o), 0.2);
  near(cosineWd((T - 1) / 2, o), 0.12, 1e-15);
  for (let it = 1; it < T; it++) assert.ok(cosineWd(it, o) > cosineWd(it - 1, o));
  // the closed form of the spec
  for (const it of [1, 17, 400, 998]) near(cosineWd(it, o), 0.2 + (0.04 - 0.2) * 0.5 * (1 + Math.cos(Math.PI * it / (T - 1))), 1e-14);
});

test('lr closed form (spec §8.2, including T − 1 − wp)', () => {
  const o = { peakLr: 0.7, warmupIters: 10, totalIters: 50 };
  for (let it = 0; it < 50; it++) {
    const expected = it < 10 ? 0.7 * (0.005 + 0.995 * it / 10) : 0.7 * (0.001 + 0.999 * 0.5 * (1 + Math.cos(Math.PI * (it - 10) / (50 - 1 - 10))));
    near(warmupCosineLr(it, o), expected, 1e-14, `it ${it}`);
  }
  // no warmup: starts at the peak
  near(warmupCosineLr(0, { peakLr: 1, warmupIters: 0, totalIters: 10 }), 1);
  // degenerate lengths where Python would divide by zero: the ratio is 0
  near(warmupCosineLr(0, { peakLr: 1, warmupIters: 0, totalIters: 1 }), 1);
  near(cosineWd(0, { wd: 0.04, wdEnd: 0.2, totalIters: 1 }), 0.04);
});

test('fine-tuning schedule: same lr, constant wd (spec §9)', () => {
  const s = finetuneSchedule({ peakLr: 0.016, wd: 0.02, warmupEpochs: 5, epochs: 300, itersPerEpoch: 10 });
  near(s(0).lr, 0.016 * 0.005);
  near(s(50).lr, 0.016);
  near(s(2999).lr, 0.016 * 0.001, 1e-12);
  for (const it of [0, 50, 1234, 2999]) assert.is(s(it).wd, 0.02);
});

test('schedules equal the official Python at the R50 recipe and a fractional warmup', () => {
  const file = fileURLToPath(new URL('../fixtures/optim/trajectories.safetensors', import.meta.url));
  const samples = JSON.parse(loadSafetensorsMetadata(file).schedule_samples) as {
    pretrain: { options: Parameters<typeof pretrainSchedule>[0]; points: [number, number, number][] };
    finetune: { options: Parameters<typeof finetuneSchedule>[0]; points: [number, number, number][] };
  };
  const pre = pretrainSchedule(samples.pretrain.options);
  for (const [it, lr, wd] of samples.pretrain.points) {
    near(pre(it).lr, lr, 1e-15, `pretrain lr it ${it}`);
    near(pre(it).wd, wd, 1e-15, `pretrain wd it ${it}`);
  }
  const ft = finetuneSchedule(samples.finetune.options);
  for (const [it, lr, wd] of samples.finetune.points) {
    near(ft(it).lr, lr, 1e-15, `finetune lr it ${it}`);
    assert.is(ft(it).wd, wd);
  }
  // the fractional warmup (2.5 epochs × 5 = 12.5 iterations) rounds to 12, as Python's round does
  near(ft(12).lr, samples.finetune.options.peakLr, 1e-15);
});

test('applyLrWd: scaled per group, returns the extremes', () => {
  const a = new Parameter(zeros([2, 2])), b = new Parameter(zeros([2]));
  const opt = new AdamW([
    { params: [a], lrScale: 0.5, weightDecayScale: 1 },
    { params: [b], lrScale: 1, weightDecayScale: 0 },
  ], { lr: 1, weightDecay: 0 });
  const r = applyLrWd(opt, 0.1, 0.04);
  assert.equal(opt.paramGroups.map((g) => [g.lr, g.weightDecay]), [[0.05, 0.04], [0.1, 0]]);
  assert.equal(r, { minLr: 0.05, maxLr: 0.1, minWd: 0, maxWd: 0.04 });
});

test.run();
