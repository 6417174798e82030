/**
 * ImageNet (ILSVRC-2012 CLS-LOC) as distributed:
 * - training images in `train/<wnid>/*.JPEG`;
 * - validation images flat in `val/` (`ILSVRC2012_val_00000001.JPEG`...) with labels from one of
 *   (a) the per-image VOC-style XML annotations (`<annotation><object><name>n01751748</name>...`), in `val/` itself or
 *       a folder of their own (e.g. `Annotations/CLS-LOC/val/`),
 *   (b) Kaggle's `LOC_val_solution.csv` (`ImageId,PredictionString` with "wnid x1 y1 x2 y2 wnid ..."),
 *   (c) a plain label list: "<file> <label>" per line (Caffe's `val.txt`; label = 0-based class index or a wnid), or
 *       one label per line in the order of the sorted validation file names;
 *   or validation images already sorted into `val/<wnid>/` folders (read like `train/`).
 * The wnid → index mapping comes from a synset file or the sorted `train/` folder names (see synsets.ts).
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { DatasetFormatError } from '../idx/dataset-format-error.js';
import { SynsetMap, isWnid, readSynsetMapping, synsetMapFromNames } from './synsets.js';

/** A labelled list of image files (decoded lazily by the trainer's loader). */
export interface ImageFileSet {
  files: string[];
  labels: Int32Array;
  classNames: string[];
}

const IMAGE_EXT = /\.(jpe?g|png)$/i;

async function listDir(dir: string): Promise<import('node:fs').Dirent[]> {
  try {
    return await fs.readdir(dir, { withFileTypes: true });
  } catch {
    throw new DatasetFormatError(dir, null, 'missing or unreadable folder');
  }
}

/** Sorted class folder names of an ImageFolder-style directory. */
export async function classFolders(dir: string): Promise<string[]> {
  return (await listDir(dir))
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** Reads `<dir>/<wnid>/*` images; every folder must be a class of `synsets`. Files are sorted for determinism. */
export async function readImageFolder(dir: string, synsets: SynsetMap): Promise<ImageFileSet> {
  const files: string[] = [];
  const labels: number[] = [];
  for (const wnid of await classFolders(dir)) {
    const label = synsets.index.get(wnid);
    if (label === undefined) throw new DatasetFormatError(path.join(dir, wnid), null, `class folder '${wnid}' is not in the synset list`);
    const names = (await listDir(path.join(dir, wnid)))
      .filter((e) => e.isFile() && IMAGE_EXT.test(e.name))
      .map((e) => e.name)
      .sort();
    for (const n of names) {
      files.push(path.join(dir, wnid, n));
      labels.push(label);
    }
  }
  if (files.length === 0) throw new DatasetFormatError(dir, null, 'no images found (expected <wnid>/*.JPEG)');
  return { files, labels: Int32Array.from(labels), classNames: synsets.wnids };
}

function labelOf(token: string, synsets: SynsetMap, file: string, line: number | null): number {
  if (isWnid(token)) {
    const i = synsets.index.get(token);
    if (i === undefined) throw new DatasetFormatError(file, line, `unknown class ${token} (not in the synset list)`);
    return i;
  }
  if (/^\d+$/.test(token)) {
    const i = Number(token);
    if (i >= synsets.wnids.length) {
      throw new DatasetFormatError(file, line, `class index ${i} is out of range (${synsets.wnids.length} classes)`);
    }
    return i;
  }
  throw new DatasetFormatError(file, line, `'${token}' is neither a wnid nor a class index`);
}

const stem = (name: string): string => path.basename(name).replace(/\.[^.]*$/, '');

/** The label of one VOC-style annotation: the wnid of its objects (all objects of an ILSVRC val image share it). */
export function parseVocClassLabel(xml: string, file: string, synsets: SynsetMap): { image: string; label: number } {
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw new DatasetFormatError(file, valid.err.line, `malformed XML: ${valid.err.msg}`);
  const doc = new XMLParser({ isArray: (name) => name === 'object', parseTagValue: false }).parse(xml) as {
    annotation?: { filename?: unknown; object?: { name?: unknown }[] };
  };
  const ann = doc.annotation;
  if (!ann) throw new DatasetFormatError(file, null, 'no <annotation> element');
  const names = (ann.object ?? []).map((o) => {
    if (o.name !== undefined && typeof o.name !== 'string') throw new DatasetFormatError(file, null, '<object><name> is not plain text');
    return o.name ?? '';
  });
  if (names.length === 0 || names[0] === '') throw new DatasetFormatError(file, null, 'no <object><name> (class) in the annotation');
  const distinct = [...new Set(names)];
  if (distinct.length > 1) throw new DatasetFormatError(file, null, `objects of different classes (${distinct.join(', ')})`);
  if (ann.filename !== undefined && typeof ann.filename !== 'string') throw new DatasetFormatError(file, null, '<filename> is not plain text');
  const image = ann.filename !== undefined ? stem(ann.filename) : stem(file);
  return { image, label: labelOf(distinct[0]!, synsets, file, null) };
}

/** `LOC_val_solution.csv` → image stem → label. */
export function parseLocValSolution(text: string, file: string, synsets: SynsetMap): Map<string, number> {
  const out = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    if (i === 0 && /^ImageId\s*,/i.test(line)) return;
    const comma = line.indexOf(',');
    if (comma < 0) throw new DatasetFormatError(file, i + 1, 'expected "ImageId,PredictionString"');
    const id = line.slice(0, comma).trim();
    const first = line.slice(comma + 1).trim().split(/\s+/)[0] ?? '';
    if (id === '' || first === '') throw new DatasetFormatError(file, i + 1, 'empty image id or prediction string');
    if (out.has(id)) throw new DatasetFormatError(file, i + 1, `image ${id} listed twice`);
    out.set(id, labelOf(first, synsets, file, i + 1));
  });
  return out;
}

/**
 * A plain label list: "<file> <label>" lines (→ keyed by image stem), or bare "<label>" lines (→ keyed by position,
 * `#0`, `#1`, ... to be matched with the sorted image names).
 */
export function parseLabelList(text: string, file: string, synsets: SynsetMap): Map<string, number> {
  const out = new Map<string, number>();
  let position = 0;
  let twoColumn: boolean | null = null;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const parts = line.split(/\s+/);
    if (parts.length > 2) throw new DatasetFormatError(file, i + 1, `expected "<file> <label>" or "<label>", got ${parts.length} fields`);
    const two = parts.length === 2;
    if (twoColumn === null) twoColumn = two;
    else if (twoColumn !== two) throw new DatasetFormatError(file, i + 1, 'mixes one-column and two-column lines');
    const key = two ? stem(parts[0]!) : `#${position++}`;
    if (out.has(key)) throw new DatasetFormatError(file, i + 1, `image ${key} listed twice`);
    out.set(key, labelOf(parts[two ? 1 : 0]!, synsets, file, i + 1));
  });
  return out;
}

export type ValidationLabels =
  | { kind: 'xml'; dir: string }
  | { kind: 'loc-csv'; file: string }
  | { kind: 'list'; file: string }
  | { kind: 'folders' };

export interface ImageNetOptions {
  root: string;
  /** A synset file; default: `LOC_synset_mapping.txt` in root if present, else the sorted `train/` folder names. */
  synsetFile?: string;
  /** Default: val/<wnid>/ folders, else `LOC_val_solution.csv` in root, else XML files in val/. */
  validation?: ValidationLabels;
}

async function exists(p: string): Promise<boolean> {
  try {
    await fs.access(p);
    return true;
  } catch {
    return false;
  }
}

export async function imagenetSynsets(options: ImageNetOptions): Promise<SynsetMap> {
  if (options.synsetFile) return readSynsetMapping(options.synsetFile);
  const loc = path.join(options.root, 'LOC_synset_mapping.txt');
  if (await exists(loc)) return readSynsetMapping(loc);
  const folders = await classFolders(path.join(options.root, 'train'));
  if (folders.length === 0) throw new DatasetFormatError(path.join(options.root, 'train'), null, 'no class folders');
  return synsetMapFromNames(folders);
}

export async function loadImageNetTrain(options: ImageNetOptions, synsets?: SynsetMap): Promise<ImageFileSet> {
  return readImageFolder(path.join(options.root, 'train'), synsets ?? (await imagenetSynsets(options)));
}

export async function loadImageNetVal(options: ImageNetOptions, synsets?: SynsetMap): Promise<ImageFileSet> {
  const map = synsets ?? (await imagenetSynsets(options));
  const valDir = path.join(options.root, 'val');
  let how = options.validation;
  if (!how) {
    const entries = await listDir(valDir);
    if (entries.some((e) => e.isDirectory() && isWnid(e.name))) how = { kind: 'folders' };
    else if (await exists(path.join(options.root, 'LOC_val_solution.csv'))) {
      how = { kind: 'loc-csv', file: path.join(options.root, 'LOC_val_solution.csv') };
    } else how = { kind: 'xml', dir: valDir };
  }
  if (how.kind === 'folders') return readImageFolder(valDir, map);

  const images = (await listDir(valDir))
    .filter((e) => e.isFile() && IMAGE_EXT.test(e.name))
    .map((e) => e.name)
    .sort();
  if (images.length === 0) throw new DatasetFormatError(valDir, null, 'no validation images');
  let labelsByStem: Map<string, number>;
  let source: string;
  if (how.kind === 'xml') {
    source = how.dir;
    labelsByStem = new Map();
    const xmls = (await listDir(how.dir)).filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.xml'));
    for (const e of xmls) {
      const f = path.join(how.dir, e.name);
      const { image, label } = parseVocClassLabel(await fs.readFile(f, 'utf8'), f, map);
      labelsByStem.set(image, label);
    }
  } else if (how.kind === 'loc-csv') {
    source = how.file;
    labelsByStem = parseLocValSolution(await fs.readFile(how.file, 'utf8'), how.file, map);
  } else {
    source = how.file;
    labelsByStem = parseLabelList(await fs.readFile(how.file, 'utf8'), how.file, map);
    if (labelsByStem.has('#0')) {
      if (labelsByStem.size !== images.length) {
        throw new DatasetFormatError(how.file, null, `${labelsByStem.size} labels for ${images.length} images in ${valDir}`);
      }
      const byPosition = labelsByStem;
      labelsByStem = new Map(
        images.map((n, i) => {
          const label = byPosition.get(`#${i}`);
          if (label === undefined) throw new DatasetFormatError(how.file, null, `no label for image ${i + 1} (${n}) of ${valDir}`);
          return [stem(n), label];
        }),
      );
    }
  }
  const labels = new Int32Array(images.length);
  images.forEach((n, i) => {
    const l = labelsByStem.get(stem(n));
    if (l === undefined) throw new DatasetFormatError(path.join(valDir, n), null, `image has no label in ${source}`);
    labels[i] = l;
  });
  return { files: images.map((n) => path.join(valDir, n)), labels, classNames: map.wnids };
}
