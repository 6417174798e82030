/**
 * data-params/datasets: readers for the datasets the trainers use (IDX/MNIST-like, CIFAR, ImageNet, WebVision, KITTI,
 * synthetic KITTI), label noise, and the detection input pipeline. Bad input throws an error naming the file and line.
 */
export { DatasetFormatError } from './idx/dataset-format-error.js';
export { parseIdx, readIdxFile, encodeIdxUint8 } from './idx/idx-file.js';
export type { IdxArray, IdxData } from './idx/idx-file.js';
export { loadMnistLike, FASHION_MNIST_CLASSES, DEBIAN_FASHION_MNIST_DIR } from './idx/mnist-like.js';
export type { GreyImageSet } from './idx/mnist-like.js';
export { parseCifarBatch, encodeCifarBatch, loadCifar } from './cifar/cifar-binary.js';
export type { CifarVariant, ColorImageSet } from './cifar/cifar-binary.js';
export { parseSynsetMapping, readSynsetMapping, synsetMapFromNames } from './imagenet/synsets.js';
export type { SynsetMap } from './imagenet/synsets.js';
export {
  loadImageNetTrain,
  loadImageNetVal,
  imagenetSynsets,
  readImageFolder,
  parseVocClassLabel,
  parseLocValSolution,
  parseLabelList,
} from './imagenet/imagenet.js';
export type { ImageFileSet, ImageNetOptions, ValidationLabels } from './imagenet/imagenet.js';
export { FileList, readFileLists, loadWebVisionList, webVisionImagePath } from './webvision/file-list.js';
export type { WebVisionOptions, WebVisionSource } from './webvision/file-list.js';
export { corruptLabels, corruptedFractionInTop, noisyRanking, parseNoiseModel, NOISE_MODELS } from './noisy-labels/noisy-labels.js';
export type { NoiseModel, NoisyLabels } from './noisy-labels/noisy-labels.js';
export { KittiDataset, KittiInputError, KITTI_CLASSES, KITTI_NEIGHBOUR_CLASSES } from './kitti/dataset.js';
export type { KittiBox, KittiRecord, KittiOpenOptions, KittiSplit } from './kitti/dataset.js';
export { parseKittiObjects, formatKittiObject, formatKittiDetection, kittiDifficulty, KittiFormatError } from './kitti/label-file.js';
export type { KittiObject, KittiDifficulty } from './kitti/label-file.js';
export { writeKittiResults } from './kitti/result-writer.js';
export type { KittiDetection } from './kitti/result-writer.js';
export { generateSyntheticKitti, ensureSyntheticKitti, SYNTHETIC_KITTI_DEFAULT_SIZE } from './synthetic-kitti/generate.js';
export type { SyntheticKittiOptions, SyntheticKittiSummary, SyntheticKittiManifest } from './synthetic-kitti/generate.js';
export { CORRUPTION_KINDS, CORRUPTION_RECORD_FILE, CORRUPTION_RECORD_COLUMNS } from './synthetic-kitti/corrupt-boxes.js';
export type { CorruptionKind, Corruption } from './synthetic-kitti/corrupt-boxes.js';
export { DetectionLoader, kittiDetectionItems, isTrainedBox, prepareSample, simpleAugmentation, SSD_AUGMENTATION } from './pipeline/loader.js';
export type {
  DetectionBatch,
  DetectionItem,
  DetectionLoaderOptions,
  LabelledBox,
  LoaderState,
  AugmentOptions,
  SimpleAugmentOptions,
} from './pipeline/loader.js';
export type { DetectionTarget, ImageDecoder, RawImage, Affine } from './pipeline/types.js';
export { boxesToSource, planGeometry, cropTarget, flipBoxes } from './pipeline/geometry.js';
export type { GeometricAugmentOptions } from './pipeline/geometry.js';
export type { PhotometricOptions, NormaliseOptions } from './pipeline/render.js';
export { decodeImage, ImageDecodeError } from './pipeline/decode.js';
