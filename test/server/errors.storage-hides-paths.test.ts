import { open } from 'node:fs/promises';
import path from 'node:path';
import { expect, it } from 'vitest';
import { storageError } from '../../services/server/errors.js';
import { tempDir } from '../helpers/tmp.js';

it('a disk fault reaches the client as its errno and call, not the server path the fs error names', async () => {
  const { dir, cleanup } = await tempDir('hotdeploy-storage-error-');
  try {
    const missing = path.join(dir, 'apps', 'demo', 'tmp', 'bundle.tgz');
    const fault = await open(missing, 'r').then(() => undefined, (err: NodeJS.ErrnoException) => err);
    expect(fault?.message).toContain(dir);
    const answer = storageError(fault as NodeJS.ErrnoException);
    expect(answer).toMatchObject({ code: 'DEPLOY_ERR_STORAGE', statusCode: 500 });
    expect(answer.message).toBe('the release store could not write to disk: ENOENT in open');
    expect(answer.cause).toBe(fault);
  } finally {
    await cleanup();
  }
});
