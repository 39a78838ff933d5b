import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IsulaError } from '../src/errors.js';

test('an IsulaError from another copy of core keeps its code: instanceof holds for codes this copy knows', async () => {
  // A second instance of the module: what a plugin installed in a plugin dir, with its own @isula/core, throws.
  const other = (await import(`../src/errors.js?copy=${Date.now()}`)) as typeof import('../src/errors.js');
  assert.notEqual(other.IsulaError, IsulaError);
  const foreign = new other.IsulaError('CONTAINER_NOT_FOUND', 'No such container: x');
  assert.ok(foreign instanceof IsulaError);
  assert.equal((foreign as IsulaError).httpStatus, 404);

  // Look-alikes are not: a plain Error, a wrong name, or a code this copy does not know.
  assert.ok(!(new Error('x') instanceof IsulaError));
  assert.ok(!(Object.assign(new Error('x'), { code: 'CONTAINER_NOT_FOUND' }) instanceof IsulaError));
  assert.ok(!(Object.assign(new Error('x'), { name: 'IsulaError', code: 'NO_SUCH_CODE' }) instanceof IsulaError));
  assert.ok(!({ name: 'IsulaError', code: 'CONTAINER_NOT_FOUND' } instanceof IsulaError));
  assert.ok(new IsulaError('INTERNAL', 'x') instanceof IsulaError);
  assert.ok(new IsulaError('INTERNAL', 'x') instanceof Error);
});
