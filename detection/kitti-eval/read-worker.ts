/** Worker: reads one directory's files (the label files, while the main thread reads the results). */
import { parentPort, workerData } from 'node:worker_threads';
import { ownTable, scanFiles, serialiseError, tableBuffers } from './read-files.js';

export interface ReadWorkerData {
  dir: string;
  ids: string[];
  kind: 'label' | 'result';
}

const { dir, ids, kind } = workerData as ReadWorkerData;
try {
  const table = ownTable(scanFiles(dir, ids, kind, false).table);
  parentPort!.postMessage({ table }, tableBuffers(table));
} catch (e) {
  parentPort!.postMessage({ error: serialiseError(e) });
}
