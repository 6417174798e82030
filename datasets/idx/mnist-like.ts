/**
 * MNIST-layout datasets (MNIST, Fashion-MNIST): `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
 * `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte`, each optionally gzipped (`.gz`), in one folder. Debian's
 * `dataset-fashion-mnist` installs the gzipped files in /usr/share/datasets/fashion-mnist.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { readIdxFile } from './idx-file.js';
import { DatasetFormatError } from './dataset-format-error.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;

export const DEBIAN_FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

/** Grey-scale images with integer labels: image i is pixels[i*h*w .. (i+1)*h*w). */
export interface GreyImageSet {
  count: number;
  height: number;
  width: number;
  pixels: Uint8Array;
  labels: Int32Array;
  numClasses: number;
}

async function findFile(dir: string, base: string): Promise<string> {
  for (const name of [base, `${base}.gz`]) {
    const p = path.join(dir, name);
    try {
      await fs.access(p);
      return p;
    } catch {
      // try the next spelling
    }
  }
  throw new DatasetFormatError(path.join(dir, base), null, 'missing (looked for the raw and the .gz file)');
}

export async function loadMnistLike(dir: string, split: 'train' | 'test', numClasses = 10): Promise<GreyImageSet> {
  const prefix = split === 'train' ? 'train' : 't10k';
  const imagesFile = await findFile(dir, `${prefix}-images-idx3-ubyte`);
  const labelsFile = await findFile(dir, `${prefix}-labels-idx1-ubyte`);
  const images = await readIdxFile(imagesFile);
  const labels = await readIdxFile(labelsFile);
  if (images.dims.length !== 3 || !(images.data instanceof Uint8Array)) {
    throw new DatasetFormatError(imagesFile, null, `expected uint8 images [N, H, W], got [${images.dims.join(', ')}]`);
  }
  if (labels.dims.length !== 1 || !(labels.data instanceof Uint8Array)) {
    throw new DatasetFormatError(labelsFile, null, `expected uint8 labels [N], got [${labels.dims.join(', ')}]`);
  }
  const [count, height, width] = images.dims as [number, number, number];
  if (labels.dims[0] !== count) {
    throw new DatasetFormatError(labelsFile, null, `${labels.dims[0]} labels for ${count} images in ${imagesFile}`);
  }
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const l = labels.data[i]!;
    if (l >= numClasses) throw new DatasetFormatError(labelsFile, null, `label ${l} of item ${i} is not below ${numClasses}`);
    out[i] = l;
  }
  return { count, height, width, pixels: images.data, labels: out, numClasses };
}
