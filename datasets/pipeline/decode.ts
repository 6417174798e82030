/**
 * Image decoding with sharp (libvips decodes in its own threads, so decoding overlaps the training step):
 * any PNG/JPEG -> 8-bit sRGB, 3 channels, HWC bytes. Errors name the file.
 *
 *   const img = await decodeImage('training/image_2/000000.png');   // { data: Uint8Array, width, height }
 */
import sharp from 'sharp';
import type { RawImage } from './types.js';

export class ImageDecodeError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: cannot read the image (${reason})`);
    this.name = 'ImageDecodeError';
  }
}

export async function decodeImage(file: string): Promise<RawImage> {
  try {
    const { data, info } = await sharp(file, { failOn: 'truncated' })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels after conversion, got ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (err) {
    throw new ImageDecodeError(file, err instanceof Error ? err.message.split('\n')[0]! : String(err));
  }
}
