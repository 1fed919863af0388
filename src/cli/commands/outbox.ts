import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { InputError } from '../../errors.ts';
import type { AppFactory } from '../main.ts';

/** `gazette outbox [--last N] [--json]`: the newest messages the outbox transport wrote, with their links. */
export function registerOutbox(program: Command, makeApp: AppFactory): void {
  program
    .command('outbox')
    .description('the newest messages in data/outbox/ (the outbox transport): to, subject and the links of each, decoded')
    .option('--last <n>', 'how many, newest first', '5')
    .option('--json', 'machine-readable output')
    .action(async (flags: { last: string; json?: boolean }) => {
      const count = Number(flags.last);
      if (!Number.isInteger(count) || count < 1) throw new InputError(`--last: expected a positive whole number, got "${flags.last}"`);
      const dir = path.join(makeApp().config.dataDir, 'outbox');
      const names = (await readdir(dir).catch(() => [])).filter((n) => n.endsWith('.eml'));
      const dated = await Promise.all(names.map(async (name) => ({ name, at: (await stat(path.join(dir, name))).mtimeMs })));
      const newest = dated.sort((a, b) => b.at - a.at).slice(0, count);
      const messages = await Promise.all(
        newest.map(async ({ name, at }) => {
          const parsed = await (await mailparser()).simpleParser(await readFile(path.join(dir, name)));
          const to = Array.isArray(parsed.to) ? parsed.to.map((a) => a.text).join(', ') : (parsed.to?.text ?? '');
          const links = [...new Set((parsed.text ?? '').match(/https?:\/\/[^\s<>"]+/g) ?? [])];
          return { file: path.join(dir, name), written: new Date(at).toISOString(), to, subject: parsed.subject ?? '', links };
        }),
      );
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(messages, null, 2)}\n`);
        return;
      }
      if (messages.length === 0) {
        process.stdout.write(`no messages in ${dir} (the outbox transport writes them there when SMTP_URL is unset)\n`);
        return;
      }
      for (const m of messages) process.stdout.write(`${m.written}  to ${m.to}\n  ${m.subject}\n  ${m.file}\n${m.links.map((l) => `    ${l}\n`).join('')}\n`);
    });
}

// mailparser is loaded by this command alone: it weighs 25 MB the other commands never need.
let loaded: Promise<typeof import('mailparser')> | undefined;
function mailparser(): Promise<typeof import('mailparser')> {
  return (loaded ??= import('mailparser'));
}
