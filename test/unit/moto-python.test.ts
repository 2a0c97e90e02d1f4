import { describe, expect, it } from 'vitest';
import { MOTO_INSTRUCTION, motoPython } from '../sandbox/moto.ts';

describe('motoPython', () => {
  it('finds the Python that has moto', () => {
    expect(motoPython({ install: false })).toMatch(/python/);
  });

  it('fails with one line of instructions when no Python has moto', () => {
    const find = () => motoPython({ candidates: ['/nonexistent/bin/python3'], install: false });

    expect(find).toThrow(MOTO_INSTRUCTION);
    expect(MOTO_INSTRUCTION).not.toMatch(/\n/);
  });
});
