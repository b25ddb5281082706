// Writes config.schema.json from the built code: core schema + every built-in plugin's schema.
import { writeFileSync } from 'node:fs';
import { editorSchema, serializeSchema } from '../dist/core/config/editor-schema.js';

const schema = await editorSchema();
writeFileSync(new URL('../config.schema.json', import.meta.url), serializeSchema(schema));
console.log('config.schema.json written');
