#!/usr/bin/env node
// Entry point of the installed `portcullis` binary: loads the TypeScript sources through tsx.
import { register } from 'tsx/esm/api';

register();
// Client commands skip loading the broker (seconds of start-up); everything else, and `--help`, gets the whole program.
const CLIENT_COMMANDS = new Set(['login', 'logout', 'whoami', 'targets', 'open', 'ls', 'close', 'extend', 'approve', 'deny']);
await import(CLIENT_COMMANDS.has(process.argv[2] ?? '') ? '../src/cli/client/main.ts' : '../src/cli/main.ts');
