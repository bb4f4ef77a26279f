import { measureControl, measureMemory } from '../figures/memory.js';
import { childMain } from '../child.js';

// argv: hot|control updates (run with --expose-gc)
const updates = Number(process.argv[3]);
childMain(() => (process.argv[2] === 'control' ? measureControl(updates) : measureMemory(updates)));
