/**
 * Runs an ES module script in a fresh node process with a time limit, for tests of things that can hang or keep a
 * process alive (the threaded wasm build, the kernel pool): a hang fails the test instead of the test run.
 */
import * as assert from 'uvu/assert';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

// The scripts import relative to the compiled test folder (dist/test), one up from this file.
const testDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const CHILD_LIMIT_MS = 120_000;

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * `node --input-type=module -e script` in test/ (compiled), with this process's environment changed by `env` (null
 * removes a variable); killed after CHILD_LIMIT_MS (then `signal` is set).
 */
export function runChild(script: string, env: Record<string, string | null>): Promise<ChildResult> {
  const childEnv = { ...process.env };
  for (const [name, value] of Object.entries(env)) {
    if (value === null) delete childEnv[name];
    else childEnv[name] = value;
  }
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: testDir, env: childEnv, timeout: CHILD_LIMIT_MS });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 }));
  });
}

export function assertExitedOnItsOwn(child: ChildResult): void {
  assert.is(child.signal, null, `child was killed after ${child.ms} ms (it hung or did not exit on its own); stderr: ${child.stderr}`);
  assert.is(child.status, 0, child.stderr);
}
