import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { inject } from 'vitest';
import { checkMessageRules, formatReport, headerValues } from './message-conformance.ts';
import { CHECK_EML, checkEmlAvailable, checkEmlMissingLine, PYTHON, type ServicesReport } from './services.ts';

const run = promisify(execFile);

export { CHECK_EML };

// Whether ../shared/tools/check-eml.py runs here (CI always has it beside the clone).
const HAVE_CHECK_EML = checkEmlAvailable();

let warned = (inject('services') as ServicesReport | undefined)?.checkEml === false;

/**
 * Runs the shared bulk-sender checker; returns its exit code and report. Where ../shared/tools is
 * not beside the repository, the same rules are judged by tests/helpers/message-conformance.ts
 * (report in check-eml.py's shape, exit code 1 on any FAIL) and the run says so in one line.
 */
export async function checkEml(files: string[], options: { dkimTxt?: string } = {}): Promise<{ code: number; output: string }> {
  if (!HAVE_CHECK_EML) return checkWithoutSharedTool(files, options);
  const args = [CHECK_EML, ...(options.dkimTxt ? ['--dkim-txt', options.dkimTxt] : ['--no-dkim']), ...files];
  try {
    const { stdout } = await run(PYTHON, args);
    return { code: 0, output: stdout };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, output: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

async function checkWithoutSharedTool(files: string[], options: { dkimTxt?: string }): Promise<{ code: number; output: string }> {
  if (!warned) console.warn(checkEmlMissingLine());
  warned = true;
  const txtRecord = options.dkimTxt ? (await readFile(options.dkimTxt, 'utf8')).trim() : undefined;
  const reports: string[] = ['(the shared check-eml.py cannot run here: judged by tests/helpers/message-conformance.ts)'];
  let code = 0;
  for (const file of files) {
    const raw = await readFile(file, 'utf8');
    // Like check-eml.py's --dkim-txt, the record answers for the signature's own d= and s=.
    const tags = signatureTags(raw);
    const dkim = txtRecord && tags.d && tags.s ? { txtRecord, domain: tags.d, selector: tags.s } : undefined;
    const results = await checkMessageRules(raw, { dkim });
    if (txtRecord && !dkim) results.push({ status: 'FAIL', rule: 'dkim cryptographic verify (mailauth)', detail: 'no DKIM-Signature with d= and s= to verify' });
    if (results.some((r) => r.status === 'FAIL')) code = 1;
    reports.push(formatReport(file, results));
  }
  return { code, output: `${reports.join('\n')}\n` };
}

function signatureTags(raw: string): { d?: string; s?: string } {
  const [signature] = headerValues(raw, 'DKIM-Signature');
  if (!signature) return {};
  const tag = (name: string) => new RegExp(`(?:^|;)\\s*${name}\\s*=\\s*([^;\\s]+)`).exec(signature)?.[1];
  return { d: tag('d'), s: tag('s') };
}
