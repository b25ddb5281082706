import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { editorSchema, serializeSchema } from '../../core/config/editor-schema.js';

describe('config.schema.json', () => {
  it('matches the core schema and every built-in plugin schema (run `npm run schema` to update)', async () => {
    const committed = readFileSync(new URL('../../config.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(serializeSchema(await editorSchema()));
  });
});
