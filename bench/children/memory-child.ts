import { measureMemory } from '../figures/memory.js';
import { childMain } from '../child.js';

// argv: updates (run with --expose-gc)
childMain(() => measureMemory(Number(process.argv[2])));
