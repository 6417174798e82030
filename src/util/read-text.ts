import { promises as fs } from 'node:fs';

/** A UTF-8 file's text, or null when it does not exist (every other failure is thrown). */
export async function readTextIfExists(file: string): Promise<string | null> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}
