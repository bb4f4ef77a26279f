import { readFile } from 'node:fs/promises';
import { configFromArgs } from './config.js';
import type { BenchReport } from './report.js';
import { renderMarkdown, renderReport } from './render.js';
import { runBench } from './run.js';

// `npm run bench [-- --quick] [-- --json | --markdown] [-- --only deployLatency,applyTime] [-- --from saved.json]`. Progress goes to
// stderr, so `--json` leaves exactly one JSON object on stdout. Exit 1 only when a figure could not
// be measured; a missed target is a result, reported as MISS.
const config = configFromArgs(process.argv.slice(2));
const report = config.from !== undefined
  ? JSON.parse(await readFile(config.from, 'utf8')) as BenchReport
  : await runBench(config, (message) => process.stderr.write(`[bench] ${message}\n`));
// Exit explicitly: PM2's client library can keep sockets and timers alive after it was disconnected.
const text = config.json ? JSON.stringify(report, null, 2) + '\n' : config.markdown ? renderMarkdown(report) : renderReport(report);
process.stdout.write(text, () => {
  process.exit(Object.keys(report.errors).length > 0 ? 1 : 0);
});
