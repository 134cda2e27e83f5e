/**
 * optim: SGD, AdamW and LAMB (spark-spec §8.4), clipGradNorm, SparK's parameter groups (no-decay rule §8.3, layer-wise lr decay
 * §9) and its lr / wd schedules (§8.2, §9).
 *
 *   const groups = optim.paramGroupsForSpark(spark.namedParameters());
 *   const opt = new optim.LAMB(groups, { lr: peak, weightDecay: 0, betas: [0.9, 0.95], maxGradNorm: 5 });
 *   const sched = optim.pretrainSchedule({ peakLr: optim.lrForBatch(2e-4, 4096), wd: 0.04, wdEnd: 0.2,
 *                                          warmupEpochs: 40, epochs: 1600, itersPerEpoch });
 *   for (let it = …) { const { lr, wd } = sched(it); optim.applyLrWd(opt, lr, wd); opt.zeroGrad(); …backward…; opt.step(); }
 */
export { Optimizer, OptimizerStateError, packStateDict, unpackStateDict } from './optimizer.ts';
export type { ParamGroup, ParamGroupSpec, OptimizerStateDict, OptimizerMeta, JsonValue } from './optimizer.ts';
export { SGD } from './sgd.ts';
export type { SGDHyper, SGDOptions } from './sgd.ts';
export { AdamW } from './adamw.ts';
export type { AdamWHyper, AdamWOptions } from './adamw.ts';
export { LAMB } from './lamb.ts';
export type { LAMBHyper, LAMBOptions } from './lamb.ts';
export {
  SPARK_NO_DECAY_KEYS, isNoDecay, noDecayGroups, paramGroupsForSpark, layerDecayGroups, resnetLayerId, convnextLayerId,
  resnetBlocksPerId,
} from './groups.ts';
export type { NamedParamGroup, LayerId, LayerDecayOptions } from './groups.ts';
export { clipGradNorm } from './clip.ts';
export {
  roundHalfEven, lrForBatch, warmupCosineLr, cosineWd, pretrainSchedule, finetuneSchedule, applyLrWd,
} from './schedule.ts';
export type { LrScheduleOptions, WdScheduleOptions, EpochScheduleOptions, LrWd, ScheduledGroups } from './schedule.ts';
