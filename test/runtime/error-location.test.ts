import { expect, it } from 'vitest';
import { describeError, errorLocation } from '../../agent/runtime/error-location.js';

const root = '/srv/releases/app/1.0.1';

function errorWith(stack: string, message = 'boom', name = 'Error'): Error {
  const err = new Error(message);
  err.name = name;
  err.stack = stack;
  return err;
}

it('takes the first frame in the release outside node_modules, relative to the release', () => {
  const err = errorWith([
    'Error: boom',
    '    at thrower (/srv/releases/app/1.0.1/node_modules/lib/index.js:10:5)',
    '    at Object.<anonymous> (/srv/releases/app/1.0.1/routes/users.js:3:11)',
    '    at Module._compile (node:internal/modules/cjs/loader:1521:14)',
  ].join('\n'));
  expect(describeError(err, [root]).message).toBe('routes/users.js:3:11: boom');
});

it('falls back to a frame in node_modules, reads file URLs (ES modules), and knows older releases', () => {
  expect(errorLocation(errorWith('Error: x\n    at f (/srv/releases/app/1.0.1/node_modules/lib/a.js:1:2)'), [root])).toBe('node_modules/lib/a.js:1:2');
  expect(errorLocation(errorWith('Error: x\n    at file:///srv/releases/app/1.0.0/app.mjs:4:7'), [root, '/srv/releases/app/1.0.0'])).toBe('app.mjs:4:7');
  expect(errorLocation(errorWith('Error: x\n    at node:internal/x:1:1'), [root])).toBeUndefined();
});

it('reads a SyntaxError\'s location from the stack\'s first line and the caret under the source line', () => {
  const err = errorWith(`${root}/app.js:2\nconsole.log('x'\n            ^^^\n\nSyntaxError: missing ) after argument list\n    at wrapSafe (node:internal/modules/cjs/loader:1464:18)`, 'missing ) after argument list', 'SyntaxError');
  expect(describeError(err, [root]).message).toBe('app.js:2:13: SyntaxError: missing ) after argument list');
});

it('keeps the message\'s first line only; without a location, the message alone', () => {
  const err = errorWith('Error: Cannot find module \'x\'\nRequire stack:\n- /elsewhere/a.js', "Cannot find module 'x'\nRequire stack:\n- /elsewhere/a.js");
  expect(describeError(err, [root])).toMatchObject({ message: "Cannot find module 'x'" });
  expect(describeError('a thrown string', [root])).toEqual({ message: 'a thrown string' });
});
