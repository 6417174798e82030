import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { parseIdx, encodeIdxUint8, readIdxFile } from '../datasets/idx/idx-file.js';
import { loadMnistLike } from '../datasets/idx/mnist-like.js';
import { DatasetFormatError } from '../datasets/idx/dataset-format-error.js';
import { parseCifarBatch, encodeCifarBatch, loadCifar } from '../datasets/cifar/cifar-binary.js';
import { parseSynsetMapping } from '../datasets/imagenet/synsets.js';
import {
  loadImageNetTrain,
  loadImageNetVal,
  parseVocClassLabel,
  parseLocValSolution,
  parseLabelList,
} from '../datasets/imagenet/imagenet.js';
import { readFileLists, loadWebVisionList, webVisionImagePath } from '../datasets/webvision/file-list.js';
import { corruptLabels, corruptedFractionInTop, noisyRanking } from '../datasets/noisy-labels/noisy-labels.js';

const tmp = (p: string): string => mkdtempSync(path.join(tmpdir(), `dp-cls-${p}-`));

function throwsFormat(fn: () => unknown, file: string, line: number | null, reason: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, DatasetFormatError);
    const e = err as DatasetFormatError;
    assert.is(e.file, file);
    assert.is(e.line, line);
    assert.match(e.reason, reason);
    return;
  }
  assert.unreachable('expected a DatasetFormatError');
}

async function rejectsFormat(p: Promise<unknown>, message: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.instance(err, DatasetFormatError);
    assert.match((err as Error).message, message);
    return;
  }
  assert.unreachable('expected a DatasetFormatError');
}

// ---------------------------------------------------------------- idx

test('idx: hand-written uint8 header and data, raw and gzip', async () => {
  // magic 00 00 08 03, dims 2 x 2 x 3 big-endian, then 12 bytes
  const bytes = new Uint8Array([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3, ...Array.from({ length: 12 }, (_, i) => i * 20)]);
  const a = parseIdx(bytes, 'x');
  assert.equal(a.dims, [2, 2, 3]);
  assert.equal(Array.from(a.data), [0, 20, 40, 60, 80, 100, 120, 140, 160, 180, 200, 220]);
  const b = parseIdx(gzipSync(bytes), 'x.gz');
  assert.equal(Array.from(b.data), Array.from(a.data));
  assert.equal(Array.from(encodeIdxUint8([2, 2, 3], a.data as Uint8Array)), Array.from(bytes));
  // big-endian int32 type 0x0C
  const ints = parseIdx(new Uint8Array([0, 0, 0x0c, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0xff, 0xff, 0xff, 0xfe]));
  assert.equal(Array.from(ints.data), [256, -2]);
});

test('idx: bad input names the file and the problem', () => {
  throwsFormat(() => parseIdx(new Uint8Array([1, 0, 8, 1]), 'a.idx'), 'a.idx', null, /first two bytes/);
  throwsFormat(() => parseIdx(new Uint8Array([0, 0, 7, 1, 0, 0, 0, 1, 5]), 'b.idx'), 'b.idx', null, /type code 0x7/);
  throwsFormat(() => parseIdx(new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 5]), 'c.idx'), 'c.idx', null, /need 11 bytes, the file has 9/);
  throwsFormat(() => parseIdx(new Uint8Array([0x1f, 0x8b, 1, 2, 3]), 'd.gz'), 'd.gz', null, /corrupt gzip/);
});

test('idx: MNIST layout loads train and t10k, gzip or raw, and checks counts', async () => {
  const dir = tmp('mnist');
  const img = new Uint8Array(3 * 2 * 2).map((_, i) => i);
  writeFileSync(path.join(dir, 'train-images-idx3-ubyte.gz'), gzipSync(encodeIdxUint8([3, 2, 2], img)));
  writeFileSync(path.join(dir, 'train-labels-idx1-ubyte.gz'), gzipSync(encodeIdxUint8([3], new Uint8Array([9, 0, 4]))));
  writeFileSync(path.join(dir, 't10k-images-idx3-ubyte'), encodeIdxUint8([1, 2, 2], new Uint8Array([1, 2, 3, 4])));
  writeFileSync(path.join(dir, 't10k-labels-idx1-ubyte'), encodeIdxUint8([2], new Uint8Array([1, 2])));
  const train = await loadMnistLike(dir, 'train');
  assert.is(train.count, 3);
  assert.is(train.height, 2);
  assert.equal(Array.from(train.labels), [9, 0, 4]);
  assert.equal(Array.from(train.pixels.subarray(8, 12)), [8, 9, 10, 11]);
  await rejectsFormat(loadMnistLike(dir, 'test'), /t10k-labels-idx1-ubyte: 2 labels for 1 images/);
  assert.equal((await readIdxFile(path.join(dir, 'train-labels-idx1-ubyte.gz'))).dims, [3]);
  await rejectsFormat(loadMnistLike(tmp('empty'), 'train'), /train-images-idx3-ubyte: missing/);
});

// ---------------------------------------------------------------- cifar

test('cifar-10: planar records become interleaved pixels; 5 train batches + names', async () => {
  // One hand-made record: label 7, red plane all 1, green plane 2, blue plane = pixel index mod 256.
  const rec = new Uint8Array(3073);
  rec[0] = 7;
  rec.fill(1, 1, 1025);
  rec.fill(2, 1025, 2049);
  for (let p = 0; p < 1024; p++) rec[2049 + p] = p % 256;
  const parsed = parseCifarBatch(rec, 'cifar10', 'r.bin');
  assert.equal(Array.from(parsed.labels), [7]);
  assert.equal(Array.from(parsed.pixels.subarray(0, 6)), [1, 2, 0, 1, 2, 1]);
  assert.equal(Array.from(parsed.pixels.subarray(3 * 300, 3 * 300 + 3)), [1, 2, 300 % 256]);
  assert.equal(Array.from(encodeCifarBatch('cifar10', parsed.pixels, parsed.labels)), Array.from(rec));

  const root = tmp('cifar10');
  const dir = path.join(root, 'cifar-10-batches-bin');
  mkdirSync(dir);
  for (let b = 1; b <= 5; b++) {
    const px = new Uint8Array(2 * 3072).fill(b);
    writeFileSync(path.join(dir, `data_batch_${b}.bin`), encodeCifarBatch('cifar10', px, [b, b + 1]));
  }
  writeFileSync(path.join(dir, 'test_batch.bin'), rec);
  const names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
  writeFileSync(path.join(dir, 'batches.meta.txt'), names.join('\n') + '\n\n');
  const train = await loadCifar(root, 'cifar10', 'train');
  assert.is(train.count, 10);
  assert.equal(Array.from(train.labels), [1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
  assert.is(train.pixels[9 * 3072 + 5], 5);
  assert.equal(train.classNames, names);
  const testSet = await loadCifar(dir, 'cifar10', 'test');
  assert.equal(Array.from(testSet.labels), [7]);
});

test('cifar-100: coarse + fine label bytes; truncation and bad labels are errors', async () => {
  const px = new Uint8Array(2 * 3072).map((_, i) => i % 251);
  const bytes = encodeCifarBatch('cifar100', px, [99, 3], [19, 0]);
  assert.is(bytes.length, 2 * 3074);
  assert.is(bytes[0], 19);
  assert.is(bytes[1], 99);
  const p = parseCifarBatch(bytes, 'cifar100', 'train.bin');
  assert.equal(Array.from(p.labels), [99, 3]);
  assert.equal(Array.from(p.coarseLabels!), [19, 0]);
  assert.equal(Array.from(p.pixels), Array.from(px));
  throwsFormat(() => parseCifarBatch(bytes.subarray(0, 3000), 'cifar100', 'train.bin'), 'train.bin', null, /multiple of the cifar100 record size 3074/);
  const bad = bytes.slice();
  bad[3074 + 1] = 100;
  throwsFormat(() => parseCifarBatch(bad, 'cifar100', 'train.bin'), 'train.bin', null, /record 1 \(byte offset 3074\): label 100/);
  const root = tmp('cifar100');
  mkdirSync(path.join(root, 'cifar-100-binary'));
  writeFileSync(path.join(root, 'cifar-100-binary', 'test.bin'), bytes);
  const t = await loadCifar(root, 'cifar100', 'test');
  assert.is(t.numClasses, 100);
  assert.is(t.classNames[5], 'class 5');
  await rejectsFormat(loadCifar(root, 'cifar100', 'train'), /train\.bin: missing cifar100 batch file/);
});

// ---------------------------------------------------------------- imagenet

const SYNSETS = `n01440764 tench, Tinca tinca
n01443537 goldfish, Carassius auratus
n01484850 great white shark, white shark
`;

function vocXml(file: string, wnids: string[]): string {
  const objects = wnids
    .map((w) => `\t<object>\n\t\t<name>${w}</name>\n\t\t<pose>Unspecified</pose>\n\t\t<truncated>0</truncated>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n\t\t\t<xmin>10</xmin>\n\t\t\t<ymin>20</ymin>\n\t\t\t<xmax>30</xmax>\n\t\t\t<ymax>40</ymax>\n\t\t</bndbox>\n\t</object>\n`)
    .join('');
  return `<annotation>\n\t<folder>val</folder>\n\t<filename>${file}</filename>\n\t<source>\n\t\t<database>ILSVRC_2012</database>\n\t</source>\n\t<size>\n\t\t<width>500</width>\n\t\t<height>375</height>\n\t\t<depth>3</depth>\n\t</size>\n\t<segmented>0</segmented>\n${objects}</annotation>\n`;
}

function makeImageNet(): string {
  const root = tmp('imagenet');
  for (const [w, n] of [['n01440764', 2], ['n01484850', 1]] as const) {
    mkdirSync(path.join(root, 'train', w), { recursive: true });
    for (let i = 0; i < n; i++) writeFileSync(path.join(root, 'train', w, `${w}_${1000 + i}.JPEG`), 'jpeg bytes');
    writeFileSync(path.join(root, 'train', w, `${w}.txt`), 'not an image');
  }
  mkdirSync(path.join(root, 'val'));
  for (let i = 1; i <= 3; i++) writeFileSync(path.join(root, 'val', `ILSVRC2012_val_0000000${i}.JPEG`), 'jpeg');
  return root;
}

test('imagenet: synset file parsing, with line-numbered errors', () => {
  const s = parseSynsetMapping(SYNSETS, 'LOC_synset_mapping.txt');
  assert.equal(s.wnids, ['n01440764', 'n01443537', 'n01484850']);
  assert.is(s.descriptions[1], 'goldfish, Carassius auratus');
  assert.is(s.index.get('n01484850'), 2);
  assert.equal(parseSynsetMapping('n00000002\nn00000001\n').wnids, ['n00000002', 'n00000001']);
  throwsFormat(() => parseSynsetMapping('n01440764 a\n\ngoldfish b\n', 's.txt'), 's.txt', 3, /'goldfish' is not a WordNet id/);
  throwsFormat(() => parseSynsetMapping('n01440764\nn01440764\n', 's.txt'), 's.txt', 2, /listed twice/);
});

test('imagenet: train folders with a synset file or sorted folder names', async () => {
  const root = makeImageNet();
  const byFolders = await loadImageNetTrain({ root });
  assert.equal(byFolders.classNames, ['n01440764', 'n01484850']);
  assert.equal(Array.from(byFolders.labels), [0, 0, 1]);
  assert.equal(byFolders.files.map((f) => path.relative(root, f)), [
    'train/n01440764/n01440764_1000.JPEG',
    'train/n01440764/n01440764_1001.JPEG',
    'train/n01484850/n01484850_1000.JPEG',
  ]);
  writeFileSync(path.join(root, 'LOC_synset_mapping.txt'), SYNSETS);
  const bySynsets = await loadImageNetTrain({ root });
  assert.equal(Array.from(bySynsets.labels), [0, 0, 2]);
  mkdirSync(path.join(root, 'train', 'n09999999'));
  await rejectsFormat(loadImageNetTrain({ root }), /n09999999: class folder 'n09999999' is not in the synset list/);
});

test('imagenet: validation labels from VOC XML, LOC_val_solution.csv and plain lists agree', async () => {
  const root = makeImageNet();
  writeFileSync(path.join(root, 'LOC_synset_mapping.txt'), SYNSETS);
  const truth = ['n01484850', 'n01440764', 'n01443537'];
  const annDir = path.join(root, 'Annotations', 'CLS-LOC', 'val');
  mkdirSync(annDir, { recursive: true });
  truth.forEach((w, i) => {
    const id = `ILSVRC2012_val_0000000${i + 1}`;
    writeFileSync(path.join(annDir, `${id}.xml`), vocXml(id, i === 0 ? [w, w] : [w]));
  });
  const xml = await loadImageNetVal({ root, validation: { kind: 'xml', dir: annDir } });
  assert.equal(Array.from(xml.labels), [2, 0, 1]);
  assert.is(path.basename(xml.files[0]!), 'ILSVRC2012_val_00000001.JPEG');

  writeFileSync(
    path.join(root, 'LOC_val_solution.csv'),
    'ImageId,PredictionString\nILSVRC2012_val_00000003,n01443537 1 2 3 4 \nILSVRC2012_val_00000001,n01484850 5 6 7 8 n01484850 1 1 2 2\nILSVRC2012_val_00000002,n01440764 0 0 9 9\n',
  );
  const csv = await loadImageNetVal({ root }); // default picks the CSV in root
  assert.equal(Array.from(csv.labels), [2, 0, 1]);

  const list = path.join(root, 'val.txt');
  writeFileSync(list, 'ILSVRC2012_val_00000001.JPEG 2\nILSVRC2012_val_00000002.JPEG n01440764\nILSVRC2012_val_00000003.JPEG 1\n');
  assert.equal(Array.from((await loadImageNetVal({ root, validation: { kind: 'list', file: list } })).labels), [2, 0, 1]);
  writeFileSync(list, '2\n0\n1\n');
  assert.equal(Array.from((await loadImageNetVal({ root, validation: { kind: 'list', file: list } })).labels), [2, 0, 1]);
  writeFileSync(list, '2\n0\n');
  await rejectsFormat(loadImageNetVal({ root, validation: { kind: 'list', file: list } }), /2 labels for 3 images/);
});

test('imagenet: malformed validation labels are errors naming file and line', () => {
  const s = parseSynsetMapping(SYNSETS);
  throwsFormat(() => parseVocClassLabel('<annotation><object><name>n01440764</name></annotation>', 'a.xml', s), 'a.xml', 1, /malformed XML/);
  throwsFormat(() => parseVocClassLabel(vocXml('x', []), 'b.xml', s), 'b.xml', null, /no <object><name>/);
  throwsFormat(() => parseVocClassLabel(vocXml('x', ['n01440764', 'n01443537']), 'c.xml', s), 'c.xml', null, /different classes/);
  throwsFormat(() => parseVocClassLabel(vocXml('x', ['n07777777']), 'd.xml', s), 'd.xml', null, /unknown class n07777777/);
  throwsFormat(() => parseVocClassLabel(vocXml('x', ['<wnid>n01440764</wnid>']), 'f.xml', s), 'f.xml', null, /<object><name> is not plain text/);
  throwsFormat(() => parseVocClassLabel(vocXml('<a>x</a>', ['n01440764']), 'g.xml', s), 'g.xml', null, /<filename> is not plain text/);
  assert.equal(parseVocClassLabel(vocXml('ILSVRC2012_val_00000009', ['n01443537']), 'e.xml', s), { image: 'ILSVRC2012_val_00000009', label: 1 });
  throwsFormat(() => parseLocValSolution('ImageId,PredictionString\nfoo n01440764 1 2 3 4\n', 'LOC.csv', s), 'LOC.csv', 2, /ImageId,PredictionString/);
  throwsFormat(() => parseLabelList('a.JPEG 1\nb.JPEG 3\n', 'val.txt', s), 'val.txt', 2, /class index 3 is out of range/);
  throwsFormat(() => parseLabelList('a.JPEG 1\n2\n', 'val.txt', s), 'val.txt', 2, /mixes/);
});

// ---------------------------------------------------------------- webvision

test('webvision: list files stream into typed arrays across chunk boundaries', async () => {
  const root = tmp('webvision');
  mkdirSync(path.join(root, 'info'));
  const google = ['google/q0001/0000001.jpg 0', 'google/q0001/0000002.jpg 999', '', 'google/q0002/0000003.jpg 12\r'];
  const flickr = ['flickr/q0001/0000001.jpg 5'];
  writeFileSync(path.join(root, 'info', 'train_filelist_google.txt'), google.join('\n') + '\n');
  writeFileSync(path.join(root, 'info', 'train_filelist_flickr.txt'), flickr.join('\n')); // no final newline
  writeFileSync(path.join(root, 'info', 'val_filelist.txt'), 'val000001.jpg 7\nval000002.jpg 3\n');
  const train = await loadWebVisionList({ root }, 'train');
  assert.is(train.count, 4);
  assert.equal(Array.from(train.labels), [0, 999, 12, 5]);
  assert.equal(Array.from(train.sourceIds), [0, 0, 0, 1]);
  assert.is(train.path(2), 'google/q0002/0000003.jpg');
  assert.is(train.path(3), 'flickr/q0001/0000001.jpg');
  const val = await loadWebVisionList({ root }, 'val');
  assert.equal(Array.from(val.labels), [7, 3]);
  assert.is(webVisionImagePath({ root }, val, 1), path.join(root, 'val_images_256', 'val000002.jpg'));
  assert.is(webVisionImagePath({ root }, train, 0), path.join(root, 'google/q0001/0000001.jpg'));
  // Tiny chunks: every line is split across reads.
  const small = await readFileLists([path.join(root, 'info', 'train_filelist_google.txt')], { numClasses: 1000, chunkSize: 5 });
  assert.equal(Array.from(small.labels), [0, 999, 12]);
  assert.is(small.path(1), 'google/q0001/0000002.jpg');
});

test('webvision: a 50k-line list keeps ~40 bytes per entry in typed arrays', async () => {
  const dir = tmp('webvision-big');
  const file = path.join(dir, 'train_filelist_google.txt');
  let text = '';
  for (let i = 0; i < 50_000; i++) text += `google/q${String((i % 1632) + 1).padStart(4, '0')}/${String(i).padStart(7, '0')}.jpg ${i % 1000}\n`;
  writeFileSync(file, text);
  const list = await readFileLists([file], { numClasses: 1000, chunkSize: 1 << 14 });
  assert.is(list.count, 50_000);
  assert.is(list.path(49_999), 'google/q1040/0049999.jpg');
  assert.is(list.labels[49_999], 999);
  // 24 path bytes + 4 offset + 4 label + 1 source = 33 bytes per entry (+4 for the final offset).
  assert.is(list.byteSize, 50_000 * 33 + 4);
});

test('webvision: malformed lines name file and line', async () => {
  const dir = tmp('webvision-bad');
  const f = path.join(dir, 'val_filelist.txt');
  writeFileSync(f, 'a.jpg 1\nb.jpg x1\n');
  await rejectsFormat(readFileLists([f], { numClasses: 1000 }), /val_filelist\.txt:2: label 'x1' is not an integer/);
  writeFileSync(f, 'a.jpg 1\n\nnolabel\n');
  await rejectsFormat(readFileLists([f], { numClasses: 1000 }), /val_filelist\.txt:3: expected "<relative path> <label>"/);
  writeFileSync(f, 'a.jpg 1000\n');
  await rejectsFormat(readFileLists([f], { numClasses: 1000 }), /val_filelist\.txt:1: label 1000 is not below 1000/);
  writeFileSync(f, '\n\n');
  await rejectsFormat(readFileLists([f], { numClasses: 1000 }), /empty file list/);
});

// ---------------------------------------------------------------- noisy labels

test('noisy labels, uniform (paper): rate, reproducibility, corrupt record', () => {
  const n = 20_000;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  const a = corruptLabels(labels, 10, { rate: 0.4, seed: 3, model: 'uniform' });
  const b = corruptLabels(labels, 10, { rate: 0.4, seed: 3, model: 'uniform' });
  assert.equal(Array.from(a.labels), Array.from(b.labels));
  assert.is.not(Array.from(corruptLabels(labels, 10, { rate: 0.4, seed: 4, model: 'uniform' }).labels).join(), Array.from(a.labels).join());
  const selected = a.selected.reduce((s, v) => s + v, 0);
  // Binomial(20000, 0.4): mean 8000, sd 69; corrupt = selected * 9/10 in expectation.
  assert.ok(Math.abs(selected - 8000) < 350, `selected ${selected}`);
  assert.ok(Math.abs(a.corruptedCount - 7200) < 350, `corrupted ${a.corruptedCount}`);
  for (let i = 0; i < n; i++) {
    assert.is(a.corrupted[i], a.labels[i] !== labels[i] ? 1 : 0);
    if (!a.selected[i]) assert.is(a.labels[i], labels[i]);
    assert.is(a.imageIndex[i], i);
  }
  const none = corruptLabels(labels, 10, { rate: 0, seed: 1, model: 'uniform' });
  assert.is(none.corruptedCount, 0);
});

test('noisy labels, permute (reference code): first floor(N p) images permuted, labels kept', () => {
  const labels = Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]);
  const r = corruptLabels(labels, 10, { rate: 0.5, seed: 9, model: 'permute' });
  assert.equal(Array.from(r.labels), Array.from(labels));
  const moved = Array.from(r.imageIndex.subarray(0, 5)).sort();
  assert.equal(moved, [0, 1, 2, 3, 4]);
  assert.equal(Array.from(r.imageIndex.subarray(5)), [5, 6, 7, 8, 9, 10]);
  assert.equal(Array.from(r.selected), [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]);
  let fixed = 0;
  for (let i = 0; i < 5; i++) {
    assert.is(r.trueLabels[i], labels[r.imageIndex[i]!]);
    assert.is(r.corrupted[i], r.imageIndex[i] === i ? 0 : 1);
    if (r.imageIndex[i] === i) fixed++;
  }
  assert.is(r.corruptedCount, 5 - fixed);
});

test('corruptedFractionInTop: hand-computed cases', () => {
  const corrupted = new Uint8Array([1, 0, 1, 0, 0]);
  assert.is(corruptedFractionInTop([5, 1, 4, 2, 3], corrupted, 0.4), 1); // top 2 = {0, 2}
  assert.is(corruptedFractionInTop([5, 1, 2, 4, 3], corrupted, 0.4), 0.5); // top 2 = {0, 3}
  assert.is(corruptedFractionInTop([1, 1, 1, 1, 1], corrupted, 0.4), 0.5); // ties by index: {0, 1}
  assert.ok(Number.isNaN(corruptedFractionInTop([1, 2], new Uint8Array(2), 0.4)));
  // 3 corrupt of 5, top 2 = {0, 2}: precision 2/2, recall 2/3
  assert.equal(noisyRanking([5, 1, 4, 2, 3], new Uint8Array([1, 0, 1, 1, 0]), 0.4), { precision: 1, recall: 2 / 3 });
});

test.run();
