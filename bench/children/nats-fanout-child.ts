import { childMain } from '../child.js';
import { natsFanoutFigure } from '../figures/nats-fanout.js';

// argv: hosts updates workDir
childMain(() => natsFanoutFigure(Number(process.argv[2]), Number(process.argv[3]), () => undefined, process.argv[4]));
