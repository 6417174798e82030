import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** A failed write: the message names the file and says that its previous content is unchanged. */
export class WriteError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    const code = (cause as NodeJS.ErrnoException | null)?.code;
    const why = cause instanceof Error ? cause.message : String(cause);
    super(`cannot write ${file} (${why}); its previous content, if any, is unchanged`);
    this.name = 'WriteError';
    this.code = code;
  }
}

/** The temporary sibling name writeFileAtomic uses: `<file>.tmp-<pid>-<time>`. */
export const ATOMIC_TEMP_PATTERN = /\.tmp-(\d+)-\d+$/;

/**
 * Writes a file so that readers see either the old or the new content, never a torn one: write a temporary file in the
 * same directory, flush it to disk, then rename it over the target (rename is atomic within a file system). A failure
 * (a full disk, say) removes the temporary file and throws a WriteError naming `file`.
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array | readonly Uint8Array[]): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}-${Date.now()}`;
  try {
    await fs.mkdir(path.dirname(file), { recursive: true });
    const handle = await fs.open(tmp, 'w');
    try {
      if (typeof data === 'string' || data instanceof Uint8Array) {
        await handle.writeFile(data);
      } else {
        for (const chunk of data) await handle.write(chunk);
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw new WriteError(file, err);
  }
}
