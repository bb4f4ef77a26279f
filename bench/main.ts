import { configFromArgs } from './config.js';
import { renderReport } from './render.js';
import { runBench } from './run.js';

// `npm run bench [-- --quick] [-- --json] [-- --only deployLatency,applyTime]`. Progress goes to
// stderr, so `--json` leaves exactly one JSON object on stdout. Exit 1 only when a figure could not
// be measured; a missed target is a result, reported as MISS.
const config = configFromArgs(process.argv.slice(2));
const report = await runBench(config, (message) => process.stderr.write(`[bench] ${message}\n`));
// Exit explicitly: PM2's client library can keep sockets and timers alive after it was disconnected.
process.stdout.write(config.json ? JSON.stringify(report, null, 2) + '\n' : renderReport(report), () => {
  process.exit(Object.keys(report.errors).length > 0 ? 1 : 0);
});
