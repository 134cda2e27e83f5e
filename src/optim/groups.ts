/**
 * Parameter groups as SparK builds them.
 *  - No weight decay (spark-spec §8.3; `get_param_groups` in pretrain/utils/lr_control.py and
 *    downstream_imagenet/lr_decay.py): a parameter goes to 'no_decay' (weightDecayScale 0) when it is 1-D, its
 *    name ends in '.bias', or its name contains one of the no-decay keys (SparK: 'cls_token', 'pos_embed',
 *    'mask_token', 'gamma'; the substring match catches `mask_tokens.i`); everything else goes to 'decay' (scale 1).
 *    Parameters with requiresGrad false are left out. Groups appear in the order of their first parameter.
 *  - Layer-wise lr decay for fine-tuning (spark-spec §9; downstream_imagenet/lr_decay.py and models/__init__.py):
 *    each parameter gets a layer id in 0…N+1 and lrScale = decay^(N+1−id); groups are keyed
 *    `layer<id>_decay` / `layer<id>_no_decay`.
 *      ResNet: stem (anything outside layer1-4 and fc) 0, layer1 1, layer2 block b 2 + b//blk2, layer3 block b
 *      2 + N2 + b//blk3, layer4 N, fc N+1, with N2 = ceil(L2/blk2), N3 = ceil(L3/blk3), N = 2 + N2 + N3.
 *      The official code has (blk2, blk3) only for these (len(layer2), len(layer3)):
 *        (4, 6) → (2, 3) [R50, also R34]; (4, 23) → (2, 3) [R101]; (8, 36) → (4, 4) [R152];
 *        (24, 36) → (4, 4) [R200]; (30, 48) → (5, 6) [ECA-R269d]; anything else raises NotImplementedError.
 *      Ours extends it: other depths use blk = ceil(L/2) (at most two ids per stage, as R50), or `resnetBlocksPerId`.
 *      ConvNeXt: N = 12 when stages[2] has more than 9 blocks, else 6; downsample_layers.0 0; stages.0 1;
 *      downsample_layers.1 / stages.1 2; downsample_layers.2 3; stages.2 block k 3 + k//3; downsample_layers.3 /
 *      stages.3 N; anything else (norm, head) N+1.
 *    As officially, layer decay is used only when 0 < decay < 1; otherwise the plain no-decay groups come back.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { ParamGroupSpec } from './optimizer.ts';

/** SparK's no-decay name keys (pretraining and fine-tuning pass the same set). */
export const SPARK_NO_DECAY_KEYS: readonly string[] = ['cls_token', 'pos_embed', 'mask_token', 'gamma'];

/** A group as these helpers build it: always named, with the parameters' names and both scales set. */
export type NamedParamGroup = ParamGroupSpec & { name: string; paramNames: string[]; lrScale: number; weightDecayScale: number };

/** §8.3's rule for one parameter. */
export function isNoDecay(name: string, p: Tensor, noDecayKeys: readonly string[] = SPARK_NO_DECAY_KEYS): boolean {
  return p.shape.length === 1 || name.endsWith('.bias') || noDecayKeys.some((k) => name.includes(k));
}

/** Collect parameters into groups keyed by name, in order of first appearance. */
function grouped(
  named: readonly (readonly [string, Tensor])[],
  classify: (name: string, p: Tensor) => { key: string; lrScale: number; weightDecayScale: number },
): NamedParamGroup[] {
  const groups = new Map<string, NamedParamGroup & { params: Tensor[] }>();
  for (const [name, p] of named) {
    if (!p.requiresGrad) continue;   // frozen weights
    const { key, lrScale, weightDecayScale } = classify(name, p);
    let g = groups.get(key);
    if (!g) {
      g = { name: key, params: [], paramNames: [], lrScale, weightDecayScale };
      groups.set(key, g);
    }
    g.params.push(p);
    g.paramNames.push(name);
  }
  return [...groups.values()];
}

/**
 * 'decay' / 'no_decay' groups: 1-D parameters, '.bias' names and names containing any of `extraNoDecay` get
 * weightDecayScale 0. (Generic: no name keys unless given; paramGroupsForSpark passes SparK's.)
 */
export function noDecayGroups(
  named: readonly (readonly [string, Tensor])[],
  options: { extraNoDecay?: readonly string[] } = {},
): NamedParamGroup[] {
  const keys = options.extraNoDecay ?? [];
  return grouped(named, (name, p) => isNoDecay(name, p, keys)
    ? { key: 'no_decay', lrScale: 1, weightDecayScale: 0 }
    : { key: 'decay', lrScale: 1, weightDecayScale: 1 });
}

/** SparK pretraining's groups (spark-spec §8.3) for e.g. `spark.namedParameters()`. */
export function paramGroupsForSpark(named: readonly (readonly [string, Tensor])[]): NamedParamGroup[] {
  return noDecayGroups(named, { extraNoDecay: SPARK_NO_DECAY_KEYS });
}

export interface LayerId {
  layerId: number;
  /** N + 1 − layerId: the exponent of the decay */
  scaleExp: number;
  /** N: the last backbone layer id (the head is N + 1) */
  numLayers: number;
}

const RESNET_OFFICIAL: Record<string, readonly [number, number]> = {
  '4,6': [2, 3], '4,23': [2, 3], '8,36': [4, 4], '24,36': [4, 4], '30,48': [5, 6],
};

/** (blk2, blk3): blocks of layer2 / layer3 that share one layer id. */
export function resnetBlocksPerId(layer2Blocks: number, layer3Blocks: number): [number, number] {
  const official = RESNET_OFFICIAL[`${layer2Blocks},${layer3Blocks}`];
  if (official) return [official[0], official[1]];
  return [Math.max(1, Math.ceil(layer2Blocks / 2)), Math.max(1, Math.ceil(layer3Blocks / 2))];
}

/** The layer id of a timm-ResNet parameter name (no prefix), as resnets_get_layer_id_and_scale_exp. */
export function resnetLayerId(
  name: string,
  depth: { layer2Blocks: number; layer3Blocks: number; blocksPerId?: readonly [number, number] },
): LayerId {
  const [blk2, blk3] = depth.blocksPerId ?? resnetBlocksPerId(depth.layer2Blocks, depth.layer3Blocks);
  const n2 = Math.ceil(depth.layer2Blocks / blk2 - 1e-5);
  const n3 = Math.ceil(depth.layer3Blocks / blk3 - 1e-5);
  const numLayers = 2 + n2 + n3;
  let layerId: number;
  if (name.startsWith('layer')) {
    const parts = name.split('.');
    const stage = Number(parts[0].slice(5));
    const block = Number(parts[1]);
    if (!Number.isInteger(stage) || !Number.isInteger(block)) throw new Error(`resnetLayerId: cannot parse ${name}`);
    if (stage === 1) layerId = 1;
    else if (stage === 2) layerId = 2 + Math.floor(block / blk2);
    else if (stage === 3) layerId = 2 + n2 + Math.floor(block / blk3);
    else layerId = numLayers;
  } else if (name.startsWith('fc.')) {
    layerId = numLayers + 1;
  } else {
    layerId = 0;
  }
  return { layerId, scaleExp: numLayers + 1 - layerId, numLayers };
}

/** The layer id of an official-ConvNeXt parameter name (no prefix), as convnext_get_layer_id_and_scale_exp. */
export function convnextLayerId(name: string, depth: { stage2Blocks: number }): LayerId {
  const numLayers = depth.stage2Blocks > 9 ? 12 : 6;
  const parts = name.split('.');
  let layerId: number;
  if (name.startsWith('downsample_layers')) {
    const stage = Number(parts[1]);
    layerId = stage === 0 ? 0 : stage === 1 || stage === 2 ? stage + 1 : numLayers;
  } else if (name.startsWith('stages')) {
    const stage = Number(parts[1]);
    const block = Number(parts[2]);
    if (stage === 0 || stage === 1) layerId = stage + 1;
    else if (stage === 2) layerId = 3 + Math.floor(block / 3);
    else layerId = numLayers;
  } else {
    layerId = numLayers + 1;   // after the backbone: norm, head
  }
  return { layerId, scaleExp: numLayers + 1 - layerId, numLayers };
}

/** Number of blocks under `<stage>.<k>.` among the names. */
function countBlocks(names: readonly string[], stage: string): number {
  let max = -1;
  const re = new RegExp(`^${stage.replace('.', '\\.')}\\.(\\d+)\\.`);
  for (const n of names) {
    const m = re.exec(n);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

export interface LayerDecayOptions {
  model: 'resnet' | 'convnext';
  /** the per-layer lr decay (SparK's `lr_scale`, e.g. 0.7 for R50 / ConvNeXt, 0.8 for R101+) */
  decay: number;
  /** name keys for no weight decay; default SPARK_NO_DECAY_KEYS (what SparK fine-tuning passes) */
  noDecayKeys?: readonly string[];
  /** stripped from each name before the layer rule, e.g. 'sparse_encoder.sp_cnn.' */
  prefix?: string;
  /** ResNet: [len(layer2), len(layer3)]; ConvNeXt: [len(stages[2])]; read from the names when absent */
  depths?: readonly number[];
  /** ResNet: override (blk2, blk3) */
  resnetBlocksPerId?: readonly [number, number];
}

/**
 * Fine-tuning groups (spark-spec §9): the no-decay rule combined with layer-wise lr decay.
 * Each group has lrScale = decay^(N+1−layerId) and weightDecayScale 1 or 0.
 */
export function layerDecayGroups(named: readonly (readonly [string, Tensor])[], options: LayerDecayOptions): NamedParamGroup[] {
  const { model, decay, noDecayKeys = SPARK_NO_DECAY_KEYS, prefix = '' } = options;
  if (!(decay > 0 && decay < 1)) return noDecayGroups(named, { extraNoDecay: noDecayKeys });
  const bare = (name: string): string => (prefix && name.startsWith(prefix) ? name.slice(prefix.length) : name);
  const names = named.map(([n]) => bare(n));
  let layerOf: (name: string) => LayerId;
  if (model === 'resnet') {
    const layer2Blocks = options.depths?.[0] ?? countBlocks(names, 'layer2');
    const layer3Blocks = options.depths?.[1] ?? countBlocks(names, 'layer3');
    if (layer2Blocks <= 0 || layer3Blocks <= 0) throw new Error('layerDecayGroups: no layer2/layer3 blocks among the names (wrong prefix?)');
    layerOf = (n) => resnetLayerId(n, { layer2Blocks, layer3Blocks, blocksPerId: options.resnetBlocksPerId });
  } else if (model === 'convnext') {
    const stage2Blocks = options.depths?.[0] ?? countBlocks(names, 'stages.2');
    if (stage2Blocks <= 0) throw new Error('layerDecayGroups: no stages.2 blocks among the names (wrong prefix?)');
    layerOf = (n) => convnextLayerId(n, { stage2Blocks });
  } else {
    throw new Error(`layerDecayGroups: unknown model ${String(model)}`);
  }
  return grouped(named, (name, p) => {
    const { layerId, scaleExp } = layerOf(bare(name));
    const noWd = isNoDecay(name, p, noDecayKeys);
    return { key: `layer${layerId}_${noWd ? 'no_decay' : 'decay'}`, lrScale: decay ** scaleExp, weightDecayScale: noWd ? 0 : 1 };
  });
}
