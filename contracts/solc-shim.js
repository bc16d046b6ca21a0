#!/usr/bin/env node
// A `solc`-compatible command over the solc-js compiler from node_modules.
//
// It answers the two forms that py-solc-x, slither and forge use:
//   solc-shim.js --version
//   solc-shim.js --standard-json [--base-path DIR] [--include-path DIR]... < input.json
// Imports resolve against the base path, the include paths and node_modules (for
// "@openzeppelin/..."). Output goes through fs.writeSync so that a pipe receives all of it:
// the `solcjs` command calls process.exit right after process.stdout.write and cuts piped
// output at 64 KiB, which is why this shim exists.
'use strict';

const fs = require('fs');
const path = require('path');

const repoRoot = path.resolve(__dirname, '..');
const nodeModules = path.join(repoRoot, 'node_modules');
const solc = require(path.join(nodeModules, 'solc'));

function writeAll(fd, text) {
  const buffer = Buffer.from(text, 'utf8');
  let offset = 0;
  while (offset < buffer.length) {
    offset += fs.writeSync(fd, buffer, offset, buffer.length - offset);
  }
}

function parseArgs(argv) {
  const options = { version: false, standardJson: false, basePath: process.cwd(), includePaths: [] };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--version') options.version = true;
    else if (arg === '--standard-json') options.standardJson = true;
    else if (arg === '--base-path') options.basePath = path.resolve(argv[++i]);
    else if (arg === '--include-path') options.includePaths.push(path.resolve(argv[++i]));
    else if (arg === '--allow-paths') i += 1; // accepted for compatibility; reads are limited below
    else if (arg.startsWith('--')) {
      // Flags such as --optimize belong in the standard JSON input; ignore them rather than fail.
      if (i + 1 < argv.length && !argv[i + 1].startsWith('--')) i += 1;
    }
  }
  return options;
}

function makeImportCallback(options) {
  const roots = [options.basePath, ...options.includePaths, nodeModules, repoRoot];
  return function findImports(importPath) {
    for (const root of roots) {
      const candidate = path.isAbsolute(importPath) ? importPath : path.join(root, importPath);
      if (fs.existsSync(candidate) && fs.statSync(candidate).isFile()) {
        return { contents: fs.readFileSync(candidate, 'utf8') };
      }
    }
    return { error: `File not found: ${importPath} (searched ${roots.join(', ')})` };
  };
}

function main() {
  const options = parseArgs(process.argv.slice(2));
  if (options.version) {
    writeAll(1, `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return 0;
  }
  if (!options.standardJson) {
    writeAll(2, 'solc-shim: only --version and --standard-json are supported\n');
    return 1;
  }
  const input = fs.readFileSync(0, 'utf8');
  const output = solc.compile(input, { import: makeImportCallback(options) });
  writeAll(1, output);
  return 0;
}

process.exitCode = main();
