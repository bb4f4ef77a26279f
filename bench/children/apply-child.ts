import { measureApply } from '../figures/apply-time.js';
import { childMain } from '../child.js';

// argv: modules iterations
childMain(() => measureApply({ modules: Number(process.argv[2]), iterations: Number(process.argv[3]) }));
