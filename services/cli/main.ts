#!/usr/bin/env node
import module from 'node:module';

// Node 22.1+ keeps the CLI's compiled code on disk between runs: a push starts sooner. Before the
// imports below (a static import would be compiled before this line runs).
module.enableCompileCache?.();
const { runCli } = await import('./run.js');

// A reader that leaves early (`hotdeploy status | head -1`) closes the pipe: what is left to print
// goes nowhere, and the command still ends with its own exit code (a deployment's outcome) instead
// of an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
  });
}

// The only place that exits on a command's result: commands return their exit code, so tests can
// run them in-process.
// Exiting explicitly means no idle keep-alive socket or timer keeps a finished command alive; the
// empty writes first let piped stdout / stderr drain (Node writes to pipes asynchronously).
const code = await runCli(process.argv.slice(2), { out: process.stdout, err: process.stderr });
await Promise.all([process.stdout, process.stderr].map((stream) => new Promise((resolve) => stream.write('', resolve))));
process.exit(code);
