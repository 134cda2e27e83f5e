/**
 * SparK's per-iteration schedules (spark-spec §8.2 and §9; pretrain/utils/lr_control.py and
 * downstream_imagenet/lr_decay.py `lr_wd_annealing`), written with the official expressions in the official
 * order so that the values match Python's bit for bit (up to the last ulp of cos):
 *   wp = round(wp_ep · iters_per_ep) (Python's round: half to even), T = ep · iters_per_ep, it = ep·ipe + step
 *   lr(it) = 0.005·peak + 0.995·peak·it/wp                                   for it < wp
 *          = 0.001·peak + 0.999·peak·(0.5 + 0.5·cos(π·(it − wp)/(T − 1 − wp)))   otherwise
 *   pretraining wd(it) = wde + (wd − wde)·(0.5 + 0.5·cos(π·it/(T − 1)))     (rises from wd to wde)
 *   fine-tuning wd(it) = wd                                                  (constant)
 * Each group then gets lr·lrScale and wd·weightDecayScale (applyLrWd).
 * Where Python would divide by zero (T − 1 − wp = 0, or T = 1), the cosine's ratio is taken as 0.
 */

/** Python's round() for the warmup length: nearest integer, halves to even. */
export function roundHalfEven(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The absolute lr from SparK's base lr: base · globalBatch / 256 (e.g. 2e-4 · 4096 / 256 = 3.2e-3). */
export function lrForBatch(baseLr: number, globalBatch: number): number {
  return baseLr * globalBatch / 256;
}

export interface LrScheduleOptions {
  /** the lr reached at the end of warmup */
  peakLr: number;
  /** warmup length in iterations (rounded half-to-even, as the official code does) */
  warmupIters: number;
  /** T: the total number of iterations */
  totalIters: number;
}

/** §8.2's lr at iteration `it`: linear warmup from 0.5% of peak, then cosine to 0.1% of peak at it = T − 1. */
export function warmupCosineLr(it: number, o: LrScheduleOptions): number {
  const peak = o.peakLr;
  const wp = roundHalfEven(o.warmupIters);
  if (it < wp) return 0.005 * peak + 0.995 * peak * it / wp;
  const span = o.totalIters - 1 - wp;
  const ratio = span === 0 ? 0 : (it - wp) / span;
  return 0.001 * peak + 0.999 * peak * (0.5 + 0.5 * Math.cos(Math.PI * ratio));
}

export interface WdScheduleOptions {
  /** the weight decay at it = 0 (0.04) */
  wd: number;
  /** the weight decay at it = T − 1 (0.2) */
  wdEnd: number;
  totalIters: number;
}

/** §8.2's wd at iteration `it`: a half cosine from wd (it = 0) to wdEnd (it = T − 1). */
export function cosineWd(it: number, o: WdScheduleOptions): number {
  const span = o.totalIters - 1;
  const ratio = span === 0 ? 0 : it / span;
  return o.wdEnd + (o.wd - o.wdEnd) * (0.5 + 0.5 * Math.cos(Math.PI * ratio));
}

export interface EpochScheduleOptions {
  peakLr: number;
  warmupEpochs: number;
  epochs: number;
  itersPerEpoch: number;
}

export interface LrWd {
  lr: number;
  wd: number;
}

/** Pretraining (§8.2): it → { lr, wd } with the rising cosine wd (SparK: wd 0.04, wdEnd 0.2). */
export function pretrainSchedule(o: EpochScheduleOptions & { wd: number; wdEnd: number }): (it: number) => LrWd {
  const totalIters = o.epochs * o.itersPerEpoch;
  const lrOpts = { peakLr: o.peakLr, warmupIters: o.warmupEpochs * o.itersPerEpoch, totalIters };
  const wdOpts = { wd: o.wd, wdEnd: o.wdEnd, totalIters };
  return (it) => ({ lr: warmupCosineLr(it, lrOpts), wd: cosineWd(it, wdOpts) });
}

/** Fine-tuning (§9): the same lr curve, constant wd. */
export function finetuneSchedule(o: EpochScheduleOptions & { wd: number }): (it: number) => LrWd {
  const lrOpts = { peakLr: o.peakLr, warmupIters: o.warmupEpochs * o.itersPerEpoch, totalIters: o.epochs * o.itersPerEpoch };
  return (it) => ({ lr: warmupCosineLr(it, lrOpts), wd: o.wd });
}

/** What applyLrWd needs of an optimizer. */
export interface ScheduledGroups {
  paramGroups: { lr: number; weightDecay: number; lrScale: number; weightDecayScale: number }[];
}

/**
 * Set every group's lr = lr·lrScale and weightDecay = wd·weightDecayScale; returns the extremes over the groups
 * (each seeded with the unscaled value, as the official code logs them).
 */
export function applyLrWd(opt: ScheduledGroups, lr: number, wd: number): { minLr: number; maxLr: number; minWd: number; maxWd: number } {
  let minLr = lr, maxLr = lr, minWd = wd, maxWd = wd;
  for (const g of opt.paramGroups) {
    g.lr = lr * g.lrScale;
    g.weightDecay = wd * g.weightDecayScale;
    minLr = Math.min(minLr, g.lr); maxLr = Math.max(maxLr, g.lr);
    minWd = Math.min(minWd, g.weightDecay); maxWd = Math.max(maxWd, g.weightDecay);
  }
  return { minLr, maxLr, minWd, maxWd };
}
