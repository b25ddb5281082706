#!/usr/bin/env node
import { main } from '../dist/core/cli.js';

main(process.argv).catch((err) => {
  process.stderr.write(`switchyard: ${err?.stack ?? err}\n`);
  process.exit(1);
});
