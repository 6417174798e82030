/**
 * The wnid → class index mapping of ImageNet-style datasets: from a synset file (`LOC_synset_mapping.txt`: one
 * "n01440764 tench, Tinca tinca" per line, or a bare list of wnids such as Caffe's `synsets.txt`; the index is the line's
 * position among the non-blank lines), or from the sorted class folder names of `train/` (torchvision's ImageFolder order,
 * which for ILSVRC equals the synset-file order).
 */
import { promises as fs } from 'node:fs';
import { DatasetFormatError } from '../idx/dataset-format-error.js';

export interface SynsetMap {
  wnids: string[];
  /** Human-readable names where the file has them (else the wnid). */
  descriptions: string[];
  index: Map<string, number>;
}

const WNID = /^n\d{8}$/;

export function isWnid(s: string): boolean {
  return WNID.test(s);
}

export function parseSynsetMapping(text: string, file = 'synsets'): SynsetMap {
  const wnids: string[] = [];
  const descriptions: string[] = [];
  const index = new Map<string, number>();
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const space = line.search(/\s/);
    const wnid = space < 0 ? line : line.slice(0, space);
    if (!isWnid(wnid)) throw new DatasetFormatError(file, i + 1, `'${wnid}' is not a WordNet id (nXXXXXXXX)`);
    const earlier = index.get(wnid);
    if (earlier !== undefined) throw new DatasetFormatError(file, i + 1, `${wnid} listed twice (first on entry ${earlier + 1})`);
    index.set(wnid, wnids.length);
    wnids.push(wnid);
    descriptions.push(space < 0 ? wnid : line.slice(space).trim());
  });
  if (wnids.length === 0) throw new DatasetFormatError(file, null, 'no synsets');
  return { wnids, descriptions, index };
}

export async function readSynsetMapping(file: string): Promise<SynsetMap> {
  return parseSynsetMapping(await fs.readFile(file, 'utf8'), file);
}

export function synsetMapFromNames(names: string[]): SynsetMap {
  const wnids = [...names].sort();
  return { wnids, descriptions: [...wnids], index: new Map(wnids.map((w, i) => [w, i])) };
}
