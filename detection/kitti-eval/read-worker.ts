/**
 * Worker: waits for a ChunkJob, reads the chunks it can claim while the main thread reads the others, and posts what
 * it read (a PostedChunkScan).
 */
import { parentPort } from 'node:worker_threads';
import { scanSharedChunks, type ChunkJob, type PostedChunkScan } from './read-chunks.js';
import { ownTable, serialiseError, tableBuffers } from './read-files.js';

parentPort!.once('message', (job: ChunkJob) => {
  let posted: PostedChunkScan;
  try {
    const scan = scanSharedChunks(job);
    const table = ownTable(scan.table);
    posted = { chunks: scan.chunks, table, missing: scan.missing };
    if (scan.error !== undefined) posted.error = { chunk: scan.error.chunk, error: serialiseError(scan.error.error) };
    parentPort!.postMessage(posted, tableBuffers(table));
  } catch (e) {
    // Not a file's error (those are in the scan): the main thread reads this worker's chunks again.
    parentPort!.postMessage({ failed: serialiseError(e) });
  }
});
