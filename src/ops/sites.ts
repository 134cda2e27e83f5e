/**
 * The SparK encoder's visible positions of an NCHW map as rows, and back (spark-spec: the official sparse BN and
 * LN take x.permute(0, 2, 3, 1)[visible] and scatter their result into zeros):
 *   gatherSites(xNCHW, sites)          → rows (V, C),   rows[v, c] = x[n, c, h, w] for sites[v] = n·H·W + h·W + w
 *   scatterSites(rowsVC, sites, shape) → (N, C, H, W), zero except the sites, which hold their rows
 * each the other's adjoint (sites distinct). On the host they read and write the NCHW map in place of a
 * channels-last copy of the whole map; on a device they are that permute and indexSelect / indexScatter.
 */
import { Tensor } from '../tensor/tensor.ts';
import type { FloatDType } from '../tensor/dtype.ts';
import { shapeStr } from '../tensor/shape.ts';
import { defineOp } from '../autograd/define.ts';
import { backend } from '../backend/registry.ts';
import { deviceFor, emptyFloat, floatData, indexData, requireFloat } from './util.ts';
import { indexScatter, indexSelect, permute, reshape } from './movement.ts';

const gatherSitesOp = defineOp<[Tensor, Tensor], { sites: Int32Array }>('gatherSites', {
  forward: ([x, sitesT], { sites }) => {
    const [N, C, H, W] = x.shape;
    if (deviceFor(x)) return indexSelect(reshape(permute(x, [0, 2, 3, 1]), [N * H * W, C]), 0, sitesT);
    const { t, data } = emptyFloat([sites.length, C], x.dtype as FloatDType);
    backend().sitesGather(floatData(x), N, C, H * W, sites, data);
    return t;
  },
  backward: (g, { inputs: [x, sitesT] }) => [scatterSites(g, sitesT, x.shape), null],
});

const scatterSitesOp = defineOp<[Tensor, Tensor], { sites: Int32Array; shape: readonly number[] }>('scatterSites', {
  forward: ([rows, sitesT], { sites, shape }) => {
    const [N, C, H, W] = shape;
    if (deviceFor(rows)) return permute(reshape(indexScatter(rows, 0, sitesT, N * H * W), [N, H, W, C]), [0, 3, 1, 2]);
    const { t, data } = emptyFloat(shape, rows.dtype as FloatDType);
    backend().sitesScatter(floatData(rows), N, C, H * W, sites, data);
    return t;
  },
  backward: (g, { inputs: [, sitesT] }) => [gatherSites(g, sitesT), null],
});

/** The rows (V, C) of xNCHW at the flat positions `sites` (1-D int, values < N·H·W). */
export function gatherSites(xNCHW: Tensor, sites: Tensor): Tensor {
  requireFloat('gatherSites', 'input', xNCHW);
  if (xNCHW.ndim !== 4) throw new Error(`gatherSites: input must be (N, C, H, W), got ${shapeStr(xNCHW.shape)}`);
  if (sites.ndim !== 1) throw new Error(`gatherSites: sites must be 1-D, got shape ${shapeStr(sites.shape)}`);
  const [N, , H, W] = xNCHW.shape;
  return gatherSitesOp([xNCHW, sites], { sites: indexData('gatherSites', 'sites', sites, N * H * W) });
}

/** An (N, C, H, W) map, zero except at `sites` (distinct), where it holds rowsVC's rows: gatherSites' adjoint. */
export function scatterSites(rowsVC: Tensor, sites: Tensor, shape: readonly number[]): Tensor {
  requireFloat('scatterSites', 'input', rowsVC);
  if (shape.length !== 4) throw new Error(`scatterSites: shape must be (N, C, H, W), got ${shapeStr(shape)}`);
  const [N, C, H, W] = shape;
  if (rowsVC.ndim !== 2 || rowsVC.shape[0] !== sites.size || rowsVC.shape[1] !== C || sites.ndim !== 1) {
    throw new Error(`scatterSites: rows ${shapeStr(rowsVC.shape)} must be (sites = ${sites.size}, C = ${C}) for map ${shapeStr(shape)}`);
  }
  return scatterSitesOp([rowsVC, sites], { sites: indexData('scatterSites', 'sites', sites, N * H * W), shape: [...shape] });
}
