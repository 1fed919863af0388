// `npm run bench [-- section…]`: prints the figures the issues set targets for.
import { benchDelivery } from './delivery.ts';
import { benchRender } from './render.ts';
import { benchServer } from './server.ts';
import { benchSchedule } from './schedule.ts';

const sections: Record<string, () => Promise<string[]>> = {
  render: benchRender,
  server: benchServer,
  delivery: benchDelivery,
  schedule: benchSchedule,
};

const wanted = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const unknown = wanted.filter((name) => !(name in sections));
if (unknown.length > 0) {
  process.stderr.write(`bench: unknown section ${unknown.join(', ')} (known: ${Object.keys(sections).join(', ')})\n`);
  process.exit(1);
}
for (const name of wanted.length > 0 ? wanted : Object.keys(sections)) {
  for (const line of await sections[name]!()) process.stdout.write(`${line}\n`);
}
