import { measureApply } from '../figures/apply-time.js';
import { measureEsmMemory } from '../figures/esm.js';
import { childMain } from '../child.js';

// argv: apply <cjs|esm|cjs-with-hooks> <modules> <iterations> | memory <updates> <boundBytes> (run with --expose-gc)
const [what, a, b, c] = process.argv.slice(2);
childMain(() => (what === 'memory'
  ? measureEsmMemory(Number(a), Number(b))
  : measureApply({ kind: a as 'cjs' | 'esm' | 'cjs-with-hooks', modules: Number(b), iterations: Number(c) })));
