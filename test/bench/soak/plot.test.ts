import assert from 'node:assert/strict';
import { test } from 'node:test';

import { niceTicks } from './plot.js';

test('axis ticks end at the first round value at or above the largest one', () => {
  assert.deepEqual(niceTicks(60), [0, 10, 20, 30, 40, 50, 60]);
  assert.deepEqual(niceTicks(61), [0, 20, 40, 60, 80]);
  assert.deepEqual(niceTicks(3.5), [0, 1, 2, 3, 4]);
});

test('a largest value a hair above a round one does not stretch the axis by a step', () => {
  assert.deepEqual(niceTicks(60.0007), [0, 10, 20, 30, 40, 50, 60]);
});
