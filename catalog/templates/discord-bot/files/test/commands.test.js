import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commands } from '../src/commands/index.js';
import { rollDice } from '../src/commands/roll.js';

describe('commands', () => {
  it('have unique names and valid definitions', () => {
    const names = commands.map((c) => c.data.toJSON().name);
    assert.equal(new Set(names).size, names.length);
    for (const command of commands) {
      const json = command.data.toJSON();
      assert.match(json.name, /^[a-z0-9_-]{1,32}$/);
      assert.ok(json.description.length >= 1 && json.description.length <= 100);
      assert.equal(typeof command.execute, 'function');
    }
  });
});

describe('rollDice', () => {
  it('stays within 1..sides and sums the rolls', () => {
    const { rolls, total } = rollDice(6, 20);
    assert.equal(rolls.length, 20);
    assert.ok(rolls.every((r) => r >= 1 && r <= 6));
    assert.equal(total, rolls.reduce((a, b) => a + b, 0));
  });

  it('maps the random source to die faces', () => {
    assert.deepEqual(rollDice(6, 2, () => 0), { rolls: [1, 1], total: 2 });
    assert.deepEqual(rollDice(6, 1, () => 0.9999), { rolls: [6], total: 6 });
  });
});
