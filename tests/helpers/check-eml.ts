import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** ../shared/tools/check-eml.py beside the repository (never copied in). */
export const CHECK_EML = fileURLToPath(new URL('../../../shared/tools/check-eml.py', import.meta.url));

/** Runs the shared bulk-sender checker; returns its exit code and report. */
export async function checkEml(files: string[], options: { dkimTxt?: string } = {}): Promise<{ code: number; output: string }> {
  if (!existsSync(CHECK_EML)) throw new Error(`check-eml.py not found at ${CHECK_EML} (shared/ must sit beside the repo)`);
  const args = [CHECK_EML, ...(options.dkimTxt ? ['--dkim-txt', options.dkimTxt] : ['--no-dkim']), ...files];
  try {
    const { stdout } = await run('/usr/bin/python3', args);
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}
