import assert from 'node:assert/strict';
import { test } from 'node:test';

import { setQueueWeightInText } from '../../src/config/edit.js';

const FILE = `{
  "$schema": "./taskq.schema.json",
  "queues": [
    { "name": "priority", "broker": { "type": "postgres" }, "weight": 90 },
    {
      "name": "background",
      "broker": "postgres"
    }
  ],
  "associations": { "a.b": "background" }
}
`;

test('a weight that is there changes in place, the rest of the file byte for byte the same', () => {
  const changed = setQueueWeightInText(FILE, 'priority', 12.5);
  assert.equal(changed, FILE.replace('"weight": 90', '"weight": 12.5'));
  assert.equal(JSON.parse(changed).queues[0].weight, 12.5);
});

test("a weight that is missing is added after the queue's last member", () => {
  const changed = setQueueWeightInText(FILE, 'background', 3);
  assert.equal(
    changed,
    FILE.replace('"broker": "postgres"\n', '"broker": "postgres", "weight": 3\n'),
  );
  assert.equal(JSON.parse(changed).queues[1].weight, 3);
});

test('an unknown queue or a broken file is refused, naming the problem', () => {
  assert.throws(() => setQueueWeightInText(FILE, 'nope', 1), /no queue named "nope"/);
  assert.throws(() => setQueueWeightInText('{"queues": [', 'a', 1), /SyntaxError|expected/);
});
