/**
 * data: image decoding (PNG, JPEG), torchvision-style transforms with PIL's resampling, datasets (ImageFolder,
 * Fashion-MNIST) and a seeded, resumable, prefetching DataLoader. Exported from the package as `data`.
 */
export { decodeImage, encodePng, sniffFormat, checkImage, ImageDecodeError } from './decode.ts';
export type { RgbImage, ImageFormat, DecodeOptions } from './decode.ts';
export {
  resize, resizeTo, resizeShorter, shorterSideSize, crop, resizedCrop, centerCrop, centerCropBox, horizontalFlip,
  randomHorizontalFlip, randomResizedCrop, randomResizedCropParams, roundHalfEven, toTensorNormalize,
  denormalizeToImage, composeTransform, pretrainTransform, evalTransform, IMAGENET_MEAN, IMAGENET_STD,
} from './transforms.ts';
export type { Interpolation, ChwImage, CropBox, RandomResizedCropOptions, ImageStep, Transform } from './transforms.ts';
export { ImageFolder, FashionMnist, parseIdx, subset, FASHION_MNIST_DIR, FASHION_MNIST_CLASSES } from './datasets.ts';
export type { Dataset, Sample, SkippedFile, ImageFolderOptions, IdxArray } from './datasets.ts';
export { DataLoader, collate, derivedGenerator } from './loader.ts';
export type { Batch, DataLoaderOptions } from './loader.ts';
