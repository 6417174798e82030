import { promises as fs, createReadStream } from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';

/** Appends JSON records, one per line. Each append is a single write, so a crash never leaves a half-written line
 * behind except possibly the last one, which readers report by line number. */
export class JsonlWriter {
  constructor(readonly file: string) {}

  async append(record: object): Promise<void> {
    await fs.mkdir(path.dirname(this.file), { recursive: true });
    await fs.appendFile(this.file, JSON.stringify(record) + '\n');
  }

  /** Drops records after `keep` (used on resume so that a rerun does not duplicate lines written after the
   * checkpoint). */
  async truncateWhere(keep: (record: Record<string, unknown>) => boolean): Promise<void> {
    let lines: string[];
    try {
      lines = (await fs.readFile(this.file, 'utf8')).split('\n').filter((l) => l.length > 0);
    } catch {
      return;
    }
    const kept = lines.filter((l) => {
      try {
        return keep(JSON.parse(l) as Record<string, unknown>);
      } catch {
        return false;
      }
    });
    await fs.writeFile(this.file, kept.map((l) => l + '\n').join(''));
  }
}

/** Reads a JSONL file; a line that is not valid JSON is an error naming the file and line. */
export async function readJsonl<T = Record<string, unknown>>(file: string): Promise<T[]> {
  const out: T[] = [];
  const rl = readline.createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  let lineNo = 0;
  for await (const line of rl) {
    lineNo++;
    if (line.trim() === '') continue;
    try {
      out.push(JSON.parse(line) as T);
    } catch {
      throw new Error(`${file}:${lineNo}: not a JSON record (truncated or corrupt line)`);
    }
  }
  return out;
}
